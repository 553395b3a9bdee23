// The scene catalogue from GET /api/scenes, loaded once and shared by every page: scene keys for
// pickers, scene and alarm type names in the current language, and each scene's parameters. The
// console keeps no scene list of its own.
import { computed, shallowRef } from 'vue'
import { fetchScenes } from '../api/scenes'
import { currentLang } from '../i18n'
import type { SceneAlarmType, SceneCatalogue, SceneInfo } from '../types/scenes'

const RETRY_MS = 5000
const catalogue = shallowRef<SceneCatalogue | null>(null)
let inFlight: Promise<SceneCatalogue> | null = null
let failedAt = 0

/** The catalogue (one request per page load; a failure is retried on a later call). */
export function loadScenes(): Promise<SceneCatalogue> {
  if (catalogue.value) return Promise.resolve(catalogue.value)
  inFlight ??= fetchScenes()
    .then((c) => (catalogue.value = c))
    .catch((exc) => {
      failedAt = Date.now()
      throw exc
    })
    .finally(() => (inFlight = null))
  return inFlight
}

function ensureLoaded(): void {
  if (!catalogue.value && !inFlight && Date.now() - failedAt > RETRY_MS) void loadScenes().catch(() => undefined)
}

const byKey = computed(() => new Map((catalogue.value?.items ?? []).map((s) => [s.key, s])))
const alarmTypes = computed(() => {
  const m = new Map<string, SceneAlarmType>()
  for (const t of catalogue.value?.alarm_types.items ?? []) m.set(t.code, t)
  return m
})

/**
 * A scene's (or alarm type code's, e.g. storage) name in the current language; the key itself while
 * the catalogue loads or when it does not know the key. Reactive: a template shows the name once it
 * has come.
 */
export function sceneName(key: string): string {
  ensureLoaded()
  const en = currentLang() === 'en'
  const scene = byKey.value.get(key)
  if (scene) return (en ? scene.name_en : scene.name_zh) || key
  const type = alarmTypes.value.get(key)
  if (type) return (en ? type.en : type.zh) || key
  return key
}

/** The catalogue for a component: scenes, their keys, one scene's description, and names. */
export function useScenes() {
  ensureLoaded()
  const scenes = computed<SceneInfo[]>(() => catalogue.value?.items ?? [])
  return {
    scenes,
    /** Keys of the scenes a camera can run (the pickers' options). */
    sceneKeys: computed(() => scenes.value.filter((s) => s.implemented !== false).map((s) => s.key)),
    /** Keys of every alarm type code: the scenes' and the gateway's own (storage ...). */
    alarmCodes: computed(() => {
      const keys = scenes.value.map((s) => s.key)
      for (const code of alarmTypes.value.keys()) if (!keys.includes(code)) keys.push(code)
      return keys
    }),
    sceneInfo: (key: string): SceneInfo | null => byKey.value.get(key) ?? null,
    sceneName,
    loaded: computed(() => catalogue.value !== null),
  }
}
