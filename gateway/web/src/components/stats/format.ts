// Changes against the previous period and shares, as the statistics page shows them.
import { sceneName } from '../../composables/useScenes'
import { currentLang } from '../../i18n'

export function change(cur: number, prev: number | undefined): number | null {
  if (!prev) return null
  return (cur - prev) / prev
}

export function changeText(c: number | null | undefined): string {
  if (c === null || c === undefined) return '-'
  const pct = (c * 100).toFixed(1)
  return c > 0 ? `▲ ${pct}%` : c < 0 ? `▼ ${pct.replace('-', '')}%` : '0%'
}

// More alarms is worse: a rise shows red, a fall green.
export function changeClass(c: number | null | undefined): string {
  if (!c) return 'flat'
  return c > 0 ? 'up' : 'down'
}

export function rate(a: number | undefined, b: number | undefined): string {
  if (a === undefined || !b) return '-'
  return `${((a / b) * 100).toFixed(1)}%`
}

/** A scene's name: the catalogue's, else the names the statistics row carries, else its key. */
export function sceneLabel(row: { scene?: string; key?: string; name_zh?: string; name_en?: string }): string {
  const key = row.scene ?? row.key ?? ''
  const named = sceneName(key)
  if (named !== key) return named
  return (currentLang() === 'en' ? row.name_en : row.name_zh) || key
}
