// Draw a scene's regions (green), exclusions (red) and the polygon being drawn (yellow) on a canvas
// laid over the camera picture; points are 0..1 fractions of the picture.
import type { Point, Region } from '../../types/cameras'

export function drawRegions(el: HTMLCanvasElement, regions: Region[], exclusions: Region[], draft: Point[]): void {
  const rect = el.getBoundingClientRect()
  const dpr = window.devicePixelRatio || 1
  el.width = Math.max(1, Math.round(rect.width * dpr))
  el.height = Math.max(1, Math.round(rect.height * dpr))
  const g = el.getContext('2d')
  if (!g) return
  g.setTransform(dpr, 0, 0, dpr, 0, 0)
  g.clearRect(0, 0, rect.width, rect.height)
  const W = rect.width
  const H = rect.height
  const poly = (pts: Point[], stroke: string, fill: string, close: boolean, label?: string): void => {
    if (!pts.length) return
    g.beginPath()
    pts.forEach(([x, y], i) => (i ? g.lineTo(x * W, y * H) : g.moveTo(x * W, y * H)))
    if (close) g.closePath()
    g.lineWidth = 2
    g.strokeStyle = stroke
    g.fillStyle = fill
    if (close) g.fill()
    g.stroke()
    for (const [x, y] of pts) {
      g.beginPath()
      g.arc(x * W, y * H, 3.5, 0, Math.PI * 2)
      g.fillStyle = stroke
      g.fill()
    }
    if (label) {
      g.font = '13px sans-serif'
      g.fillStyle = stroke
      g.fillText(label, pts[0][0] * W + 6, pts[0][1] * H - 6)
    }
  }
  for (const r of regions) poly(r.polygon, '#2ecc71', 'rgba(46,204,113,0.18)', true, r.name)
  for (const r of exclusions) poly(r.polygon, '#ff4d4f', 'rgba(255,77,79,0.22)', true, r.name)
  poly(draft, '#fadb14', 'rgba(250,219,20,0.15)', false)
}

/** The click's position on the element as 0..1 fractions (rounded to 1e-4). */
export function clickPoint(ev: MouseEvent): Point {
  const rect = (ev.target as HTMLElement).getBoundingClientRect()
  const clamp = (v: number): number => Math.min(1, Math.max(0, Math.round(v * 10000) / 10000))
  return [clamp((ev.clientX - rect.left) / rect.width), clamp((ev.clientY - rect.top) / rect.height)]
}
