// The video library, analysis jobs and replays (gateway/api/videos.py).

export interface VideoJobRef {
  id: string
  kind: string
  status: string
  progress: number
  alarm_count: number
  url: string
}

/** GET /api/videos: one library video with the jobs that analysed it. */
export interface LibraryVideo {
  id: string
  camera_id: string
  camera_name: string | null
  location: string | null
  started_at: string
  ended_at: string
  duration_s: number | null
  frames: number | null
  width: number | null
  height: number | null
  codec: string | null
  size_bytes: number | null
  filename: string | null
  url: string
  alarm_count: number
  jobs: VideoJobRef[]
}

export interface VideoList {
  items: LibraryVideo[]
  total: number
  next: string | null
}

export interface VideoQuery {
  camera_id?: string
  location?: string
  since?: string
  until?: string
  before?: string
  limit?: number
}

/** POST /api/videos answers with the analysis job; GET /api/jobs/{id} follows it. */
export interface UploadJob {
  id: string
  status: string
  progress: number
  frames: number
  total_frames: number | null
  alarms: string[]
  error: string | null
  url?: string
}

export interface ReplayPart {
  video_id: string | null
  camera_id: string
  from_s: number | null
  to_s: number | null
  status: string
  frames: number
  total_frames: number | null
  alarm_count: number
  model_versions: Record<string, string> | string[] | null
  error: string | null
}

export interface ReplayJob {
  id: string
  status: string
  camera_ids: string[]
  since: string | null
  until: string | null
  scenes: string[] | null
  model: string | null
  progress: number
  alarm_count: number
  notes: string[]
  videos: ReplayPart[]
  error: string | null
  created_by: string | null
  created_at: string | null
}

export interface ReplayRequest {
  camera_ids: string[]
  since: string
  until: string
  model: string | null
  scenes: string[] | null
}
