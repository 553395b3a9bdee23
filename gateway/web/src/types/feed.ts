// The live feed of /api/feed/ws: alarm revisions and periodic statistics.

export interface FeedAlarm {
  id: string
  revision?: number
  action?: string
  scene: string
  status: string
  priority?: number
  message?: string
  region?: string | null
  occurred_at: string
  camera?: { id: string; name: string | null; location: string | null }
  snapshot_url?: string
  source?: string // live | video (an uploaded video's alarm)
}

export interface FeedStats {
  at: string
  today_by_scene: Record<string, number>
  open: number
  cameras_online: number
  cameras: number
}

export type FeedState = 'connecting' | 'open' | 'closed'

export interface FeedHandlers {
  onAlarm(alarm: FeedAlarm, seq: number): void
  onStats(stats: FeedStats): void
  onState(state: FeedState): void
}
