// The site's clock: every time in the console is shown in the site's zone (site.timezone, the zone the
// statistics and the big screen count days and hours in), never the browser's. The zone comes from
// GET /api/site once per session; until then (or if it fails) the default of the gateway's config.
import { reactive } from 'vue'
import { api } from '../api/http'

export const DEFAULT_ZONE = 'Asia/Shanghai'

export const site = reactive<{ name: string; timezone: string; loaded: boolean }>({
  name: '',
  timezone: DEFAULT_ZONE,
  loaded: false,
})

let loading: Promise<void> | null = null

/** Load the site once (the router's guard calls it after login); a failure keeps the default zone. */
export function loadSite(): Promise<void> {
  if (site.loaded) return Promise.resolve()
  loading ??= api<{ name: string; timezone: string }>('/api/site')
    .then((s) => {
      site.name = s.name
      if (validZone(s.timezone)) site.timezone = s.timezone
      site.loaded = true
    })
    .catch(() => undefined)
    .finally(() => (loading = null))
  return loading
}

function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone })
    return true
  } catch {
    return false
  }
}

export interface ZoneParts {
  year: number
  month: number // 1..12
  day: number
  hour: number
  minute: number
  second: number
  weekday: number // 0 = Sunday, as Date.getDay()
}

const formatters = new Map<string, Intl.DateTimeFormat>()
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 }

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone)
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      weekday: 'short',
    })
    formatters.set(zone, f)
  }
  return f
}

/** The wall-clock fields of an instant in a zone (default: the site's). */
export function zoneParts(d: Date, zone: string = site.timezone): ZoneParts {
  const out: Record<string, string> = {}
  for (const p of formatter(zone).formatToParts(d)) out[p.type] = p.value
  return {
    year: Number(out.year),
    month: Number(out.month),
    day: Number(out.day),
    hour: Number(out.hour) % 24,
    minute: Number(out.minute),
    second: Number(out.second),
    weekday: WEEKDAYS[out.weekday] ?? 0,
  }
}

/** The zone's offset from UTC at an instant, in minutes (Asia/Shanghai: +480). */
export function zoneOffset(d: Date, zone: string = site.timezone): number {
  const p = zoneParts(d, zone)
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second)
  return Math.round((asUtc - Math.floor(d.getTime() / 1000) * 1000) / 60000)
}

/** The instant at which the zone's clock shows this wall time (DST gaps resolve forward). */
export function fromZoneWall(
  year: number,
  month: number,
  day: number,
  hour = 0,
  minute = 0,
  second = 0,
  zone: string = site.timezone,
): Date {
  const wall = Date.UTC(year, month - 1, day, hour, minute, second)
  let guess = new Date(wall - zoneOffset(new Date(wall), zone) * 60000)
  guess = new Date(wall - zoneOffset(guess, zone) * 60000)
  return guess
}

/** "+08:00" */
export function offsetText(minutes: number): string {
  const sign = minutes >= 0 ? '+' : '-'
  const a = Math.abs(minutes)
  return `${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`
}

/** "Asia/Shanghai (UTC+08:00)": the label the header and every time's tooltip show. */
export function zoneLabel(zone: string = site.timezone): string {
  return `${zone} (UTC${offsetText(zoneOffset(new Date(), zone))})`
}

const pad2 = (n: number): string => String(n).padStart(2, '0')

/** The site's calendar day of an instant, "YYYY-MM-DD". */
export function siteDay(d: Date): string {
  const p = zoneParts(d)
  return `${p.year}-${pad2(p.month)}-${pad2(p.day)}`
}

/** From the first day's midnight to the end of the last day, on the site's clock, as API times. */
export function dayRange(from: string, to: string): { since: string; until: string } {
  const [y1, m1, d1] = from.split('-').map(Number)
  const [y2, m2, d2] = to.split('-').map(Number)
  const start = fromZoneWall(y1, m1, d1)
  const end = new Date(fromZoneWall(y2, m2, d2 + 1).getTime() - 1000)
  return { since: isoIn(start), until: isoIn(end) }
}

/** ISO 8601 with the site's offset (what the API's since/until take). */
export function isoIn(d: Date): string {
  const p = zoneParts(d)
  return (
    `${p.year}-${pad2(p.month)}-${pad2(p.day)}T${pad2(p.hour)}:${pad2(p.minute)}:${pad2(p.second)}` +
    offsetText(zoneOffset(d))
  )
}
