// Models, versions, activation, tests and the audit trail.
import type { ActivateBody, AuditEntry, ModelRow, TestResult, Version, VersionDetail } from '../types/models'
import { api, post, seg } from './http'

export const listModels = async (): Promise<ModelRow[]> => (await api<{ items: ModelRow[] }>('/api/models')).items

/** Versions of one model, or of every model. */
export const listVersions = async (model?: string): Promise<Version[]> =>
  (await api<{ items: Version[] }>('/api/model-versions', { query: { model } })).items

export const modelAudit = async (model: string): Promise<AuditEntry[]> =>
  (await api<{ items: AuditEntry[] }>(`/api/models/${seg(model)}/audit`)).items

export const getVersion = (id: string): Promise<VersionDetail> => api<VersionDetail>(`/api/model-versions/${seg(id)}`)

export const activateVersion = (id: string, action: 'activate' | 'rollback', body: ActivateBody): Promise<unknown> =>
  post(`/api/model-versions/${seg(id)}/${action}`, body)

export const retireVersion = (id: string, reason: string | null): Promise<unknown> =>
  post(`/api/model-versions/${seg(id)}/retire`, { reason })

export const testVersion = (id: string, body: { dataset: string; conf: number; iou: number }): Promise<TestResult> =>
  post<TestResult>(`/api/model-versions/${seg(id)}/test`, body)
