// Number formatting of model metrics (precision / recall / F1) and version status colours.
import type { ClassMetrics, Version } from '../../types/models'

export function num(v: unknown): number {
  return typeof v === 'number' ? v : 0
}
export function fix(v: unknown): string {
  return typeof v === 'number' ? v.toFixed(3) : '-'
}
/** 'below' (shown red) when a number is under the bar the requirement sets. */
export function low(v: unknown, bar: number): string {
  return typeof v === 'number' && v < bar ? 'below' : ''
}
export function prf(m: Record<string, any> | null | undefined): string {
  if (!m || typeof m.f1 !== 'number') return '-'
  return `${fix(m.precision)} / ${fix(m.recall)} / ${fix(m.f1)}`
}
export function versionStatusType(s: string): 'success' | 'info' | 'warning' {
  return s === 'active' ? 'success' : s === 'retired' ? 'info' : 'warning'
}
export function className(c: string | { name?: string }): string {
  return typeof c === 'string' ? c : (c.name ?? '?')
}
export type ClassRow = ClassMetrics & { name: string }
export function classRows(classes: Record<string, ClassMetrics> | undefined | null): ClassRow[] {
  return Object.entries(classes ?? {}).map(([name, m]) => ({ name, ...m }))
}
/** The version's label among those listed, else its id. */
export function versionLabel(versions: Version[], id: string | null): string {
  if (!id) return '-'
  return versions.find((v) => v.id === id)?.version ?? id
}
