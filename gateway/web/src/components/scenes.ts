// Scene keys known to the console; GET /api/scenes (when the gateway has it) adds parameters.
import { api, ApiError } from '../api'

export const SCENE_KEYS = [
  'helmet',
  'workwear',
  'flame',
  'smoke',
  'smoking',
  'phone',
  'sleeping',
  'off_post',
  'crowd',
  'intrusion',
  'lifting_zone',
  'extinguisher',
  'rigger_on_post',
  'supervisor_present',
  'custom',
]

export interface SceneInfo {
  key: string
  name_zh?: string
  name_en?: string
  default_model?: string | null
  params_schema?: Record<string, any> | null
  sample_fps?: number
}

let cached: Promise<SceneInfo[]> | null = null

/** The scene catalogue from the gateway, or the built-in keys when it has no /api/scenes yet. */
export function loadScenes(): Promise<SceneInfo[]> {
  cached ??= api<{ items?: SceneInfo[] } | SceneInfo[]>('/api/scenes')
    .then((res) => {
      const list = Array.isArray(res) ? res : (res.items ?? [])
      return list.map((s: any) => ({ ...s, key: s.key ?? s.scene, params_schema: s.params_schema ?? s.params ?? null }))
    })
    .catch((exc) => {
      cached = null
      if (exc instanceof ApiError && exc.status === 404) return SCENE_KEYS.map((key) => ({ key }))
      throw exc
    })
  return cached
}
