// Uplink targets, their dead letters, and evidence storage (gateway/api/uplinks.py, gateway/api/system.py).

export interface UplinkTarget {
  id: number
  name: string
  kind: string
  tier: string
  enabled: boolean
  running: boolean
  available: boolean
  circuit: string
  pending: number
  dead: number
  delivered: number
  oldest_pending_s: number | null
  last_error: string | null
  last_delivered_at: string | null
}

/** An uplink as the overview summarises it (older gateways report fewer fields). */
export interface UplinkHealth {
  name: string
  kind: string
  tier: string
  enabled: boolean
  available?: boolean
  circuit?: string
  pending?: number
  dead?: number
  last_error?: string | null
  state?: string
}

export interface DeadLetter {
  id: number
  alarm_id: string
  revision: number
  attempts: number
  last_error: string | null
  created_at: string | null
}

export interface StorageUsage {
  usage_bytes: number
  quota_bytes: number | null
  percent: number | null
  retention_days: number | null
  clips_kept: boolean
  by_kind: Record<string, { files: number; bytes: number }>
  oldest_evidence: string | null
}

export interface BackfillResult {
  requeued?: number
  created?: number
}
