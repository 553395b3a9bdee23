// Sample labels as the API stores them (box = x1, y1, x2, y2 as 0..1 fractions) and as BoxEditor edits them.

export interface Box {
  label: string
  x1: number
  y1: number
  x2: number
  y2: number
}

export interface ApiLabel {
  label: string
  box: [number, number, number, number]
}

export function toBoxes(labels: Array<{ label: string; box: number[] }>): Box[] {
  return labels.map((l) => ({ label: l.label, x1: l.box[0], y1: l.box[1], x2: l.box[2], y2: l.box[3] }))
}

/** Back to API labels, rounded to 1e-5 so a save without edits sends what it loaded. */
export function toApi(boxes: Box[]): ApiLabel[] {
  const r = (v: number) => Math.round(v * 1e5) / 1e5
  return boxes.map((b) => ({ label: b.label, box: [r(b.x1), r(b.y1), r(b.x2), r(b.y2)] }))
}
