// The scene catalogue: names, defaults, alarm types and parameter descriptions of every scene.
import type { SceneCatalogue } from '../types/scenes'
import { api } from './http'

export async function fetchScenes(): Promise<SceneCatalogue> {
  const res = await api<Partial<SceneCatalogue>>('/api/scenes')
  return {
    items: (res.items ?? []).map((s) => ({ ...s, params: s.params ?? [], alarm_types: s.alarm_types ?? [] })),
    alarm_types: res.alarm_types ?? { version: 0, items: [] },
    scene_config_schema: res.scene_config_schema,
  }
}
