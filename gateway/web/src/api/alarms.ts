// Alarms: list, detail, lifecycle actions, pictures and evidence.
import type { AlarmAction, AlarmFull, AlarmList, AlarmQuery, SnapshotKind } from '../types/alarms'
import { api, apiUrl, post, seg } from './http'

export const listAlarms = (query: AlarmQuery = {}): Promise<AlarmList> =>
  api<AlarmList>('/api/alarms', { query: { ...query } })

export const getAlarm = (id: string): Promise<AlarmFull> => api<AlarmFull>(`/api/alarms/${seg(id)}`)

/** confirm / reject / dispose / clear / close: the alarm as it is afterwards. */
export const alarmAction = (id: string, action: AlarmAction, body: Record<string, unknown>): Promise<AlarmFull> =>
  post<AlarmFull>(`/api/alarms/${seg(id)}/${action}`, body)

/** The alarm's picture: its own snapshot URL when the listing gave one; '' when it has none (null). */
export function alarmSnapshotUrl(alarm: { id: string; snapshot?: string | null }): string {
  if (alarm.snapshot === null) return ''
  return apiUrl(alarm.snapshot ?? `/api/alarms/${alarm.id}/snapshot`)
}

export const alarmPictureUrl = (id: string, kind: SnapshotKind, revision: number): string =>
  apiUrl(`/api/alarms/${id}/snapshot`, { kind, r: revision })

export const evidenceUrl = (id: string, sha256: string): string => apiUrl(`/api/alarms/${id}/evidence/${sha256}`)

export interface BatchResult {
  done: number
  failed: number
  results: { id: string; ok: boolean; error?: 'not_found' | 'refused'; message?: string }[]
}

/** Confirm or reject many alarms with one reason (required to reject). */
export const batchAlarms = (ids: string[], action: 'confirm' | 'reject', reason: string): Promise<BatchResult> =>
  post<BatchResult>('/api/alarms/batch', { ids, action, reason: reason || null })

/** The download of the alarms a query selects (CSV or Excel; times on the site's clock). */
export const alarmExportUrl = (query: AlarmQuery, format: 'csv' | 'xlsx', lang: string): string =>
  apiUrl('/api/alarms/export', { ...query, format, lang })
