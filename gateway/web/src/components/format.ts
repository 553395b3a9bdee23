// Formatting shared by the pages: times, alarm status and health colours.

const pad = (n: number): string => String(n).padStart(2, '0')

export function fmtTime(iso: string | null | undefined, withDate = true): string {
  if (!iso) return '-'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}` : time
}

/** Local midnight today as ISO 8601 with offset (the API wants a zone). */
export function startOfToday(): Date {
  const d = new Date()
  d.setHours(0, 0, 0, 0)
  return d
}

export function startOfWeek(): Date {
  const d = startOfToday()
  const back = (d.getDay() + 6) % 7 // Monday starts the week (as in China)
  d.setDate(d.getDate() - back)
  return d
}

export function isoLocal(d: Date): string {
  const off = -d.getTimezoneOffset()
  const sign = off >= 0 ? '+' : '-'
  const a = Math.abs(off)
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:` +
    `${pad(d.getSeconds())}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`
  )
}

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
