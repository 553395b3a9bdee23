// The camera configuration the gateway takes on PUT /api/cameras/{id} (gateway/config.py
// CameraConfig, analyzers/scenes/settings.py SceneConfig / RegionConfig), built explicitly so no
// display-only field reaches the strict (extra = forbid) models.

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

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']
export const TAG_KEYS = [
  'area',
  'monitoring_scene',
  'equipment_status',
  'hazard_class',
  'importance',
  'environment',
  'crowd',
  'time',
] as const

type Any = Record<string, any>

export function sceneDefaults(scene: string, over: Any = {}): SceneConfig {
  return {
    scene,
    enabled: over.enabled ?? true,
    model: over.model ?? null,
    pose_model: over.pose_model ?? 'movenet_multipose',
    regions: (over.regions ?? []).map(region),
    exclusions: (over.exclusions ?? []).map(region),
    detection_threshold: over.detection_threshold ?? 0.35,
    alarm_threshold: over.alarm_threshold ?? 0.5,
    min_duration_s: over.min_duration_s ?? 3,
    gap_tolerance_s: over.gap_tolerance_s ?? 2,
    rearm_after_s: over.rearm_after_s ?? null,
    sample_fps: over.sample_fps ?? null,
    schedule: (over.schedule ?? []).map((w: Any) => ({
      days: [...(w.days ?? WEEKDAYS)],
      start: String(w.start ?? '00:00:00'),
      end: String(w.end ?? '23:59:59'),
    })),
    tags: { ...(over.tags ?? {}) },
    scene_tag: over.scene_tag ?? null,
    params: { ...(over.params ?? {}) },
  }
}

function region(r: Any): Region {
  return { name: String(r.name), polygon: (r.polygon ?? []).map((p: number[]) => [p[0], p[1]] as Point) }
}

/** From GET /api/cameras/{id}/config (the full configuration) when there is one, else rebuilt
 *  from the camera listing (thresholds then fall back to defaults; `partial` says so). */
export function fromCamera(cam: Any, full: Any | null): { config: CameraConfig; partial: boolean } {
  const c: Any = full ?? cam
  const partial = !full
  return {
    partial,
    config: {
      id: c.id,
      name: c.name ?? c.id,
      location: c.location ?? '',
      source: c.source ?? null,
      url: c.url ?? c.stream_url ?? '',
      sub_url: c.sub_url ?? c.sub_stream_url ?? null,
      transport: c.transport === 'udp' ? 'udp' : 'tcp',
      quality: c.quality ?? null,
      enabled: c.enabled ?? true,
      scenes: (c.scenes ?? []).map((s: Any) => sceneDefaults(s.scene, s)),
      capture_interval_s: c.capture_interval_s ?? null,
      alarm: {
        push: [...(c.alarm?.push ?? c.alarm_settings?.push ?? [])],
        recipients: (c.alarm?.recipients ?? c.alarm_settings?.recipients ?? []).map((r: Any) => ({
          name: r.name ?? '',
          contact: r.contact ?? '',
          role: r.role ?? '',
        })),
        min_priority: c.alarm?.min_priority ?? c.alarm_settings?.min_priority ?? 0,
      },
    },
  }
}

/** The body for PUT: empty strings become null, empty tags are dropped. */
export function toBody(c: CameraConfig): CameraConfig {
  const blank = (v: string | null | undefined): string | null => (v && v.trim() ? v.trim() : null)
  return {
    ...c,
    sub_url: blank(c.sub_url),
    quality: blank(c.quality),
    source: blank(c.source),
    scenes: c.scenes.map((s) => ({
      ...s,
      model: blank(s.model),
      scene_tag: blank(s.scene_tag),
      tags: Object.fromEntries(Object.entries(s.tags).filter(([, v]) => v !== null && v !== undefined && v !== '')),
    })),
    alarm: { ...c.alarm, recipients: c.alarm.recipients.filter((r) => r.name.trim()) },
  }
}
