// Enrolments: a plant's own uniforms, extinguishers and role markers (GET/POST /api/enrolments).
import { api, post, seg } from './http'

export interface Calibration {
  method: string
  k: number
  colour_weight: number
  threshold: number
  positives: number
  negatives: number
  loo_f1: number | null
  loo_positive_recall: number
  loo_negative_rejected: number | null
  against: string
}

export interface EnrolmentRow {
  id: string
  scene: string
  name: string
  kind: 'positive' | 'negative'
  camera_id: string | null
  version: number
  status: 'candidate' | 'active' | 'retired'
  current: boolean
  examples: number
  created_at: string
  created_by: string
  activated_at: string | null
  threshold: number | null
  calibration: Partial<Calibration>
}

export interface EnrolmentDetail extends EnrolmentRow {
  crops: string[]
  audit: Array<{ at: string; who: string; action: string; status: string; gate: string; reason: string | null }>
}

export interface FrameBoxes {
  image?: string
  alarm_id?: string
  boxes: Array<[number, number, number, number]>
}

export interface EnrolBody {
  scene: string
  name: string
  negative: boolean
  camera_id: string | null
  images: string[]
  frames: FrameBoxes[]
}

export interface Enrolled {
  id: string
  version: number
  status: string
  examples: number
  gate: string
  calibration: Calibration
}

export const listEnrolments = (scene?: string, history = false): Promise<{ items: EnrolmentRow[]; scenes: Record<string, string> }> =>
  api('/api/enrolments', { query: { scene, history: history ? '1' : undefined } })

export const getEnrolment = (id: string): Promise<EnrolmentDetail> => api<EnrolmentDetail>(`/api/enrolments/${seg(id)}`)

export const enrol = (body: EnrolBody): Promise<Enrolled> => post<Enrolled>('/api/enrolments', body)

export const rollbackEnrolment = (scene: string, name: string, camera_id: string | null): Promise<unknown> =>
  post('/api/enrolments/rollback', { scene, name, camera_id })

export const removeEnrolment = (scene: string, name: string, camera_id: string | null): Promise<unknown> =>
  post('/api/enrolments/remove', { scene, name, camera_id })

/** A picture (file or fetched blob) as the base64 the API takes. */
export function toBase64(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => resolve(String(reader.result).split(',', 2)[1] ?? '')
    reader.onerror = () => reject(reader.error ?? new Error('cannot read the picture'))
    reader.readAsDataURL(blob)
  })
}
