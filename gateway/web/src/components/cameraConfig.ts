// The camera configuration the gateway takes on PUT /api/cameras/{id} (gateway/config/schema.py
// CameraConfig, analyzers/scenes/settings.py SceneConfig / RegionConfig), built explicitly so no
// display-only field reaches the strict (extra = forbid) models.

import type { CameraConfig, Point, Region, SceneConfig } from '../types/cameras'

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
    input_size: over.input_size ?? 'auto',
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
