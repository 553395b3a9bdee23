// Statistics (gateway/api/stats.py) and the overview page's picture.
import type { AlarmItem } from './alarms'
import type { UplinkHealth } from './uplinks'

export interface GroupItem {
  key: string
  count: number
  previous?: number
  previous_key?: string | null
  name?: string | null
  location?: string | null
  camera_id?: string | null
  name_zh?: string
  name_en?: string
}

export interface GroupResult {
  group: string
  since: string
  until: string
  total: number
  previous?: { since: string; until: string; total: number }
  change?: number | null
  items: GroupItem[]
}

export interface TimeSummary {
  count: number
  mean: number | null
  p50: number | null
  p90: number | null
}

export interface DisposalRow {
  scene: string
  name_zh?: string
  name_en?: string
  total: number
  verified: number
  confirmed_true: number
  rejected_false: number
  unverified: number
  disposed: number
  cleared: number
  closed: number
  open: number
  handled: number
  time_to_confirm_s: TimeSummary
  time_to_dispose_s: TimeSummary
}

export interface DisposalResult {
  total: Omit<DisposalRow, 'scene'>
  items: DisposalRow[]
}

export type StatsQuery = Record<string, string | number | undefined>

/** GET /api/stats/overview as the gateway answers it (fields vary a little between versions). */
export interface OverviewResponse {
  today?: { by_scene?: Record<string, number>; open?: number; handled?: number }
  week?: { by_scene?: Record<string, number>; open?: number; handled?: number }
  open_total?: number
  cameras?: Record<string, number>
  uplinks?: UplinkHealth[] | { targets?: UplinkHealth[]; items?: UplinkHealth[] }
  latest?: AlarmItem[]
}

/** The overview page's picture, from /api/stats/overview or rebuilt from older routes. */
export interface Overview {
  today: Record<string, number>
  week: Record<string, number>
  open: number
  handled: number
  cameras: Record<string, number>
  uplinks: UplinkHealth[]
  latest: AlarmItem[]
}
