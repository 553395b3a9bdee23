// The sample library: training tasks, samples and their labelled boxes (gateway/api/samples.py).

export interface Task {
  id: number
  name: string
  scene: string | null
  labels: string[]
  created_at: string | null
  samples?: number
  adversarial?: number
}

/** A label as the API stores it: box = x1, y1, x2, y2 as 0..1 fractions. */
export interface ApiLabel {
  label: string
  box: [number, number, number, number]
}

/** A label as BoxEditor edits it. */
export interface Box {
  label: string
  x1: number
  y1: number
  x2: number
  y2: number
}

export interface Sample {
  id: string
  sha256: string
  width: number
  height: number
  origin: string
  camera_id: string | null
  scene: string | null
  alarm_id: string | null
  file_name: string | null
  removed: boolean
  tags: Record<string, unknown>
  labels: ApiLabel[]
  created_at: string | null
  image: string
  tasks?: string[]
}

export interface SampleQuery {
  task?: string
  origin?: string
  camera_id?: string
  scene?: string
  label?: string
  removed?: string
  before?: string | null
  limit?: number
}

export interface SampleList {
  items: Sample[]
  next: string | null
}

export interface SplitResult {
  train_set_id: string
  test_set_id: string
  train: number
  test: number
  created: boolean
}

export interface ImportReport {
  images: number
  added: number
  merged: number
  unchanged: number
  linked: number
  skipped: { file: string; reason: string }[]
  new_labels: string[]
}

export type SampleKind = 'positive' | 'false_positive'
