// Cameras: the listing (GET /api/cameras), the configuration PUT /api/cameras/{id} takes
// (gateway/config/schema.py CameraConfig, analyzers/scenes/settings.py SceneConfig / RegionConfig), and
// what ONVIF discovery and the GB/T 28181 catalog report.

export interface CameraSceneState {
  scene: string
  enabled: boolean
  status: string
  input_size?: string
  regions?: unknown[]
}

export interface CameraItem {
  id: string
  name: string
  location: string
  status: string
  last_error: string | null
  /** Why the stream is down, in the user's language (last_error keeps FFmpeg's text). */
  fault?: { code: string; message: string } | null
  enabled: boolean
  origin?: string
  source?: string | null
  stream_url?: string
  codec?: string | null
  width?: number | null
  height?: number | null
  fps?: number | null
  last_frame_at?: string | null
  scenes: CameraSceneState[]
  /** The camera's production unit with its run state, and the video diagnosis faults raised now. */
  plant?: CameraPlant | null
}

export interface CameraPlant {
  unit: { id: string; name?: string; state?: string } | null
  diagnosis: { faults: string[]; reference: boolean } | null
}

export type Point = [number, number]
export interface Region {
  name: string
  polygon: Point[]
}
export interface TimeWindow {
  days: string[]
  start: string
  end: string
}
export interface FeatureTags {
  area?: string | null
  monitoring_scene?: string | null
  equipment_status?: string | null
  hazard_class?: string | null
  importance?: 'low' | 'normal' | 'high' | 'critical' | null
  environment?: string | null
  crowd?: string | null
  time?: string | null
}
export interface SceneConfig {
  scene: string
  enabled: boolean
  model: string | null
  pose_model: string
  input_size: 'auto' | 'card' | [number, number]
  regions: Region[]
  exclusions: Region[]
  detection_threshold: number
  alarm_threshold: number
  min_duration_s: number
  gap_tolerance_s: number
  rearm_after_s: number | null
  sample_fps: number | null
  schedule: TimeWindow[]
  tags: FeatureTags
  scene_tag: string | null
  params: Record<string, unknown>
}
export interface Recipient {
  name: string
  contact: string
  role: string
}
export interface CameraConfig {
  id: string
  name: string
  location: string
  source: string | null
  url: string
  sub_url: string | null
  transport: 'tcp' | 'udp'
  quality: string | null
  enabled: boolean
  scenes: SceneConfig[]
  capture_interval_s: number | null
  alarm: { push: string[]; recipients: Recipient[]; min_priority: number }
}

/** POST /api/cameras: a new camera (its scenes are added on its page). */
export interface NewCamera {
  id: string
  name: string
  location: string
  url: string
  sub_url: string | null
  transport: string
  source: string | null
  quality: string | null
  scenes: SceneConfig[]
}

// Discovery answers vary between gateway versions: the fields below are the ones the console reads.
export interface OnvifDevice {
  host?: string
  source?: string
  port?: number
  name?: string
  location?: string
  hardware?: string
  model?: string
}
export interface OnvifProbe {
  camera?: { url?: string; sub_url?: string; name?: string; quality?: string }
}
export interface GbChannel {
  id?: string
  channel_id?: string
  name?: string
  address?: string
  status?: string
  camera_status?: string
  camera_id?: string | null
}
export interface GbDevice {
  id?: string
  device_id?: string
  name?: string
  address?: string
  online?: boolean
  channels?: GbChannel[]
  catalog?: GbChannel[]
}

/** POST /api/cameras/test: what the stream is, or why it cannot be opened. */
export interface ConnectionTest {
  ok: boolean
  message: string
  code?: string
  codec?: string
  width?: number
  height?: number
  fps?: number | null
  detail?: string
}
