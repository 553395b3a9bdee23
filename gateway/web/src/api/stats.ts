// Statistics: the overview, alarm counts by group, disposal, and their CSV exports.
import type { AlarmItem } from '../types/alarms'
import type { DisposalResult, GroupResult, Overview, OverviewResponse, StatsQuery } from '../types/stats'
import type { UplinkHealth } from '../types/uplinks'
import { ApiError, api, apiUrl } from './http'
import { listAlarms } from './alarms'
import { listCameras } from './cameras'
import { listUplinks } from './uplinks'

export const statsOverview = (): Promise<OverviewResponse> => api<OverviewResponse>('/api/stats/overview')

export const statsAlarms = (query: StatsQuery): Promise<GroupResult> =>
  api<GroupResult>('/api/stats/alarms', { query })

export const statsDisposal = (query: StatsQuery): Promise<DisposalResult> =>
  api<DisposalResult>('/api/stats/disposal', { query })

export const statsCsvUrl = (path: '/api/stats/alarms' | '/api/stats/disposal', query: StatsQuery): string =>
  apiUrl(path, { ...query, format: 'csv' })

/** /api/stats/overview: today/week periods with by_scene, open/handled, camera and uplink health. */
function fromOverview(o: OverviewResponse): Overview {
  const up = o.uplinks ?? []
  return {
    today: o.today?.by_scene ?? {},
    week: o.week?.by_scene ?? {},
    open: Number(o.open_total ?? o.week?.open ?? 0),
    handled: Number(o.week?.handled ?? 0),
    cameras: o.cameras ?? {},
    uplinks: Array.isArray(up) ? up : (up.targets ?? up.items ?? []),
    latest: o.latest ?? [],
  }
}

function countStates(items: Array<{ status: string }>): Record<string, number> {
  const out: Record<string, number> = { total: items.length }
  for (const c of items) out[c.status] = (out[c.status] ?? 0) + 1
  return out
}

export function countByScene(items: AlarmItem[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const a of items) out[a.scene] = (out[a.scene] ?? 0) + 1
  return out
}

/** Until the gateway has /api/stats/overview: the same picture from the older routes. */
async function overviewFromOlderRoutes(today: string, week: string, openStatuses: string[]): Promise<Overview> {
  const [summary, latest, todays, weeks, uplinks] = await Promise.all([
    api<{ by_scene: Record<string, Record<string, number>> }>('/api/stats/summary'),
    listAlarms({ limit: 12 }),
    listAlarms({ since: today, limit: 500 }),
    listAlarms({ since: week, limit: 500 }),
    listUplinks().catch((): UplinkHealth[] => []),
  ])
  let open = 0
  let handled = 0
  for (const statuses of Object.values(summary.by_scene)) {
    for (const [status, n] of Object.entries(statuses)) {
      if (openStatuses.includes(status)) open += n
      else handled += n
    }
  }
  return {
    today: countByScene(todays.items),
    week: countByScene(weeks.items),
    open,
    handled,
    cameras: countStates(await listCameras()),
    uplinks,
    latest: latest.items,
  }
}

/** The overview page's picture; `today`/`week` (ISO with zone) and the open statuses serve older gateways. */
export async function fetchOverview(today: string, week: string, openStatuses: string[]): Promise<Overview> {
  try {
    return fromOverview(await statsOverview())
  } catch (exc) {
    if (!(exc instanceof ApiError) || exc.status !== 404) throw exc
    return overviewFromOlderRoutes(today, week, openStatuses)
  }
}
