// Uplink targets (backlog, dead letters, replay, backfill) and evidence storage.
import type { BackfillResult, DeadLetter, StorageUsage, UplinkTarget } from '../types/uplinks'
import { api, post, seg } from './http'

export const listUplinks = async (): Promise<UplinkTarget[]> =>
  (await api<{ items: UplinkTarget[] }>('/api/uplinks')).items

export const getStorage = (): Promise<StorageUsage> => api<StorageUsage>('/api/storage')

export const listDeadLetters = async (target: string, limit = 500): Promise<DeadLetter[]> =>
  (await api<{ items: DeadLetter[] }>(`/api/uplinks/${seg(target)}/dead`, { query: { limit } })).items

/** Send dead letters again: the given ids, or all of them for none. */
export const replayDeadLetters = (target: string, ids: number[]): Promise<{ replayed: number }> =>
  post<{ replayed: number }>(`/api/uplinks/${seg(target)}/replay`, { ids })

export const backfill = (target: string, since: string, until: string): Promise<BackfillResult | undefined> =>
  post<BackfillResult | undefined>(`/api/uplinks/${seg(target)}/backfill`, { since, until })
