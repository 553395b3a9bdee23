// Formatting shared by the pages: times, alarm status and health colours. Every time is shown and
// every day starts in the site's zone (composables/useSite.ts), whatever the browser's zone is.
import { fromZoneWall, isoIn, site, zoneParts } from '../composables/useSite'

const pad = (n: number): string => String(n).padStart(2, '0')

/** "2026-12-07 21:13:50" (or the time only) on the site's clock; reading site.timezone makes a page re-render when it loads. */
export function fmtTime(iso: string | null | undefined, withDate = true): string {
  if (!iso) return '-'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const p = zoneParts(d, site.timezone)
  const time = `${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}`
  return withDate ? `${p.year}-${pad(p.month)}-${pad(p.day)} ${time}` : time
}

/** Midnight today on the site's clock. */
export function startOfToday(): Date {
  const p = zoneParts(new Date())
  return fromZoneWall(p.year, p.month, p.day)
}

export function startOfWeek(): Date {
  const p = zoneParts(new Date())
  const back = (p.weekday + 6) % 7 // Monday starts the week (as in China)
  return fromZoneWall(p.year, p.month, p.day - back)
}

/** ISO 8601 with the site's offset (the API wants a zone), e.g. 2026-12-07T00:00:00+08:00. */
export const isoLocal = isoIn

export const STATUSES = ['raised', 'confirmed', 'rejected', 'disposed', 'cleared', 'closed'] as const
export const OPEN_STATUSES = ['raised', 'confirmed', 'disposed']

export function statusType(status: string): 'danger' | 'warning' | 'success' | 'info' | 'primary' {
  switch (status) {
    case 'raised':
      return 'danger'
    case 'confirmed':
      return 'warning'
    case 'disposed':
      return 'primary'
    case 'cleared':
    case 'closed':
      return 'success'
    default:
      return 'info'
  }
}

export function healthType(state: string): 'danger' | 'warning' | 'success' | 'info' {
  if (state === 'online') return 'success'
  if (state === 'starting') return 'warning'
  if (state === 'offline' || state === 'error') return 'danger'
  return 'info'
}
