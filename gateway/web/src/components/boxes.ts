// Sample labels as the API stores them (box = x1, y1, x2, y2 as 0..1 fractions) and as BoxEditor edits them.

import type { ApiLabel, Box } from '../types/samples'

export type { ApiLabel, Box } from '../types/samples'

export function toBoxes(labels: Array<{ label: string; box: number[] }>): Box[] {
  return labels.map((l) => ({ label: l.label, x1: l.box[0], y1: l.box[1], x2: l.box[2], y2: l.box[3] }))
}

/** Back to API labels, rounded to 1e-5 so a save without edits sends what it loaded. */
export function toApi(boxes: Box[]): ApiLabel[] {
  const r = (v: number) => Math.round(v * 1e5) / 1e5
  return boxes.map((b) => ({ label: b.label, box: [r(b.x1), r(b.y1), r(b.x2), r(b.y2)] }))
}

export type Handle = 'nw' | 'ne' | 'sw' | 'se' | 'n' | 's' | 'w' | 'e'
export const HANDLES: Handle[] = ['nw', 'n', 'ne', 'e', 'se', 's', 'sw', 'w']

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#9a6324']

/** A stable colour per label. */
export function colour(label: string): string {
  let h = 0
  for (const c of label) h = (h * 31 + c.charCodeAt(0)) >>> 0
  return PALETTE[h % PALETTE.length]
}

export function pct(v: number): string {
  return `${(v * 100).toFixed(3)}%`
}

/** The box with x1 <= x2 and y1 <= y2. */
export function normalised(b: Box): Box {
  return {
    label: b.label,
    x1: Math.min(b.x1, b.x2),
    y1: Math.min(b.y1, b.y2),
    x2: Math.max(b.x1, b.x2),
    y2: Math.max(b.y1, b.y2),
  }
}

/** Where a resize handle of the box sits, and its cursor. */
export function handleStyle(b: Box, h: Handle): Record<string, string> {
  const x = h.includes('w') ? b.x1 : h.includes('e') ? b.x2 : (b.x1 + b.x2) / 2
  const y = h.includes('n') ? b.y1 : h.includes('s') ? b.y2 : (b.y1 + b.y2) / 2
  const cursor = { nw: 'nwse', se: 'nwse', ne: 'nesw', sw: 'nesw', n: 'ns', s: 'ns', e: 'ew', w: 'ew' }[h]
  return { left: pct(x), top: pct(y), cursor: `${cursor}-resize` }
}
