// The sample library: tasks (import, export, split) and samples (labels, removal, from an alarm).
import type {
  ApiLabel,
  ImportReport,
  Sample,
  SampleKind,
  SampleList,
  SampleQuery,
  SplitResult,
  Task,
} from '../types/samples'
import { api, apiUrl, post, sendRaw, seg } from './http'

export const listTasks = async (): Promise<Task[]> => (await api<{ items: Task[] }>('/api/tasks')).items

export const createTask = (body: { name: string; scene: string | null; labels: string[] }): Promise<Task> =>
  post<Task>('/api/tasks', body)

export const updateTask = (name: string, body: { scene: string | null; labels: string[] }): Promise<Task> =>
  api<Task>(`/api/tasks/${seg(name)}`, { method: 'PATCH', body })

export const deleteTask = (name: string): Promise<unknown> => api(`/api/tasks/${seg(name)}`, { method: 'DELETE' })

export const splitTask = (name: string): Promise<SplitResult> => post<SplitResult>(`/api/tasks/${seg(name)}/split`)

export const taskExportUrl = (name: string, format: string): string =>
  apiUrl(`/api/tasks/${seg(name)}/export`, { format })

export const importTask = (
  name: string,
  format: 'yolo' | 'coco',
  zip: Blob,
  onProgress?: (fraction: number) => void,
): Promise<ImportReport> =>
  sendRaw<ImportReport>(`/api/tasks/${seg(name)}/import`, { format }, zip, 'application/zip', onProgress)

export const listSamples = (query: SampleQuery): Promise<SampleList> =>
  api<SampleList>('/api/samples', { query: { ...query } })

export const getSample = (id: string): Promise<Sample> => api<Sample>(`/api/samples/${seg(id)}`)

export const putSampleLabels = (id: string, labels: ApiLabel[]): Promise<Sample> =>
  api<Sample>(`/api/samples/${seg(id)}/labels`, { method: 'PUT', body: { labels } })

export const deleteSample = (id: string): Promise<{ deleted: boolean }> =>
  api<{ deleted: boolean }>(`/api/samples/${seg(id)}`, { method: 'DELETE' })

export const sampleFromAlarm = (alarmId: string, kind: SampleKind, task?: string): Promise<Sample> =>
  post<Sample>('/api/samples/from-alarm', { alarm_id: alarmId, kind, task })
