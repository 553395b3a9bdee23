// Alarms as GET /api/alarms lists them and GET /api/alarms/{id} shows one (gateway/api/alarms.py).

export interface AlarmItem {
  id: string
  camera_id: string
  camera_name?: string
  camera_location?: string
  scene: string
  region: string | null
  status: string
  priority: number
  score: number
  message: string
  occurred_at: string
  raised_at?: string | null
  snapshot?: string | null
  snapshot_url?: string
  verdict?: string | null
  // live: a running camera; video: found in an uploaded video (history), at video_ts s into it
  source?: 'live' | 'video' | string
  video_ts?: number | null
  video_job_id?: string | null
  video_time?: string | null // the wall time in the video (its start + video_ts), when the API gives it
  kind?: string // event | flood
  repeats?: number
}

export interface AlarmList {
  items: AlarmItem[]
  next: string | null
  total?: number
}

export interface AlarmQuery {
  scene?: string
  status?: string
  camera_id?: string
  q?: string
  since?: string
  until?: string
  source?: string
  before?: string
  limit?: number
  count?: number
}

export interface Revision {
  revision: number
  action: string
  actor: string
  at: string
  changes: Record<string, unknown> | null
  note: string | null
}

export interface Evidence {
  kind: string
  sha256: string
  media_type: string
  size: number
  url: string
}

export interface Disposal {
  handler: string
  handled_at: string
  result: string
  measures: string | null
  photos: string[]
}

/** GET /api/alarms/{id}: the list's fields and the lifecycle. */
export interface AlarmFull extends AlarmItem {
  tags: Record<string, unknown> | null
  raised_at: string | null
  confirmed_at: string | null
  cleared_at: string | null
  closed_at: string | null
  verdict: string | null
  verdict_reason: string | null
  revision: number
  revisions: Revision[]
  evidence: Evidence[]
  disposals: Disposal[]
}

export type AlarmAction = 'confirm' | 'reject' | 'dispose' | 'clear' | 'close'
export type SnapshotKind = 'snapshot' | 'snapshot_raw' | 'clear_snapshot'
