// BoxEditor's pointer handling: one drag at a time, creating a box, moving one, or resizing one by a
// handle; Delete removes the selected box. Positions are 0..1 fractions of the stage.
import { onBeforeUnmount, onMounted, ref, type Ref } from 'vue'
import { normalised, type Box, type Handle } from './boxes'

// Boxes smaller than this (fraction of the image) are treated as a stray click, not a box.
const MIN_SIZE = 0.005

type Point = { x: number; y: number }
type Drag =
  | { kind: 'new'; start: Point }
  | { kind: 'move'; index: number; start: Point; orig: Box }
  | { kind: 'resize'; index: number; handle: Handle; orig: Box }

export interface BoxDragOptions {
  stage: Ref<HTMLElement | null>
  boxes: () => Box[]
  commit: (next: Box[]) => void
  newLabel: () => string
  readonly: () => boolean
  selected: Ref<number | null>
  removeSelected: () => void
}

export function useBoxDrag(o: BoxDragOptions) {
  const draft = ref<Box | null>(null)
  let drag: Drag | null = null
  const clamp = (v: number) => Math.min(1, Math.max(0, v))

  function point(ev: PointerEvent): Point {
    const r = o.stage.value!.getBoundingClientRect()
    return { x: clamp((ev.clientX - r.left) / r.width), y: clamp((ev.clientY - r.top) / r.height) }
  }

  function onStageDown(ev: PointerEvent) {
    if (o.readonly() || ev.button !== 0) return
    o.selected.value = null
    const p = point(ev)
    drag = { kind: 'new', start: p }
    draft.value = { label: o.newLabel(), x1: p.x, y1: p.y, x2: p.x, y2: p.y }
    ev.preventDefault()
  }
  function onBoxDown(ev: PointerEvent, i: number) {
    o.selected.value = i
    if (o.readonly() || ev.button !== 0) return
    drag = { kind: 'move', index: i, start: point(ev), orig: { ...o.boxes()[i] } }
    ev.preventDefault()
  }
  function onHandleDown(ev: PointerEvent, h: Handle) {
    const i = o.selected.value
    if (o.readonly() || i === null) return
    drag = { kind: 'resize', index: i, handle: h, orig: { ...o.boxes()[i] } }
    ev.preventDefault()
  }

  function onMove(ev: PointerEvent) {
    if (!drag || !o.stage.value) return
    const p = point(ev)
    if (drag.kind === 'new') {
      draft.value = { label: o.newLabel(), x1: drag.start.x, y1: drag.start.y, x2: p.x, y2: p.y }
      return
    }
    const b0 = drag.orig
    let b: Box
    if (drag.kind === 'move') {
      const w = b0.x2 - b0.x1
      const h = b0.y2 - b0.y1
      const x1 = Math.min(1 - w, Math.max(0, b0.x1 + p.x - drag.start.x))
      const y1 = Math.min(1 - h, Math.max(0, b0.y1 + p.y - drag.start.y))
      b = { label: b0.label, x1, y1, x2: x1 + w, y2: y1 + h }
    } else {
      b = { ...b0 }
      const hd = drag.handle
      if (hd.includes('w')) b.x1 = p.x
      if (hd.includes('e')) b.x2 = p.x
      if (hd.includes('n')) b.y1 = p.y
      if (hd.includes('s')) b.y2 = p.y
      b = normalised(b)
    }
    const next = o.boxes().slice()
    next[drag.index] = b
    o.commit(next)
  }

  function onUp() {
    if (!drag) return
    if (drag.kind === 'new' && draft.value) {
      const b = normalised(draft.value)
      if (b.x2 - b.x1 > MIN_SIZE && b.y2 - b.y1 > MIN_SIZE) {
        o.commit([...o.boxes(), b])
        o.selected.value = o.boxes().length // index of the new box once the parent re-renders
      }
    }
    draft.value = null
    drag = null
  }

  function onKey(ev: KeyboardEvent) {
    if (o.readonly() || o.selected.value === null) return
    const tag = (ev.target as HTMLElement | null)?.tagName
    if (tag === 'INPUT' || tag === 'TEXTAREA') return
    if (ev.key === 'Delete' || ev.key === 'Backspace') {
      o.removeSelected()
      ev.preventDefault()
    }
  }

  onMounted(() => {
    window.addEventListener('pointermove', onMove)
    window.addEventListener('pointerup', onUp)
    window.addEventListener('keydown', onKey)
  })
  onBeforeUnmount(() => {
    window.removeEventListener('pointermove', onMove)
    window.removeEventListener('pointerup', onUp)
    window.removeEventListener('keydown', onKey)
  })

  return { draft, onStageDown, onBoxDown, onHandleDown }
}
