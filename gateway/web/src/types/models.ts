// Models and their versions (gateway/api/models.py).

export interface ModelRow {
  name: string
  family: string
  description: string | null
  licence: string | null
  source: string | null
  versions: { id: string; version: string }[]
}

export type VersionStatus = 'candidate' | 'active' | 'retired'

export interface Version {
  id: string
  model: string
  version: string
  status: VersionStatus
  current: boolean
  description: string | null
  created_at: string | null
  activated_at: string | null
  train_set_id: string | null
  test_set_id: string | null
  metrics: Record<string, any>
  sha256: string
}

export interface ClassMetrics {
  precision: number
  recall: number
  f1: number
  image_f1?: number
  support?: number
}

export interface TestResult {
  dataset: string
  at: string
  by: string
  images: number
  conf: number
  iou: number
  classes: Record<string, ClassMetrics>
  overall: Record<string, number>
}

export interface DatasetRef {
  id: string
  name?: string
  purpose?: string
  task?: string | null
  missing?: boolean
}

export interface AuditEntry {
  action: string
  actor: string
  at: string
  scope: string
  from: string | null
  to: string | null
  override: boolean
  reason: string | null
}

export interface VersionUsage {
  camera_id: string
  scene: string
  how: string
  enabled: boolean
}

export interface VersionDetail extends Version {
  train_set: DatasetRef | null
  test_set: DatasetRef | null
  usage: VersionUsage[]
  classes: (string | { name?: string })[]
  licence: string | null
  tests: TestResult[]
  audit: AuditEntry[]
}

/** POST /api/model-versions/{id}/activate|rollback. */
export interface ActivateBody {
  scene?: string
  camera_id?: string
  override?: boolean
  reason?: string
}

/** A version offered in a picker: `value` is what the video and replay routes take (model@id). */
export interface VersionOption {
  id: string
  value: string
  label: string
}
