// Polygon checks while a region is drawn, the same rules as analyzers/scenes/settings.py RegionConfig:
// no edge may cross another (a self-crossing "bow tie" has no clear inside), and the area must not be 0.
import type { Point } from '../../types/cameras'

function orient(p: Point, q: Point, r: Point): number {
  return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
}

/** Whether segments a-b and c-d cross at a point inside both (touching ends do not count). */
export function segmentsCross(a: Point, b: Point, c: Point, d: Point): boolean {
  return orient(a, b, c) * orient(a, b, d) < 0 && orient(c, d, a) * orient(c, d, b) < 0
}

/** Whether adding `next` after `points` makes its new edge cross an edge already drawn. */
export function newEdgeCrosses(points: Point[], next: Point): boolean {
  const last = points[points.length - 1]
  if (!last) return false
  // every edge but the last one (which shares `last` with the new edge)
  for (let i = 0; i + 2 < points.length; i++) {
    if (segmentsCross(points[i], points[i + 1], last, next)) return true
  }
  return false
}

/** Whether the closing edge (last point back to the first) crosses another edge. */
export function closingEdgeCrosses(points: Point[]): boolean {
  const n = points.length
  if (n < 4) return false
  const first = points[0]
  const last = points[n - 1]
  for (let i = 1; i + 2 < n; i++) {
    if (segmentsCross(points[i], points[i + 1], last, first)) return true
  }
  return false
}

export function area(points: Point[]): number {
  let twice = 0
  for (let i = 0; i < points.length; i++) {
    const a = points[i]
    const b = points[(i + 1) % points.length]
    twice += a[0] * b[1] - b[0] * a[1]
  }
  return Math.abs(twice) / 2
}
