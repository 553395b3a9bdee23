// The big screen's data: the live feed (alarms and statistics) plus periodic reloads of cameras,
// today's counts and the 24-hour trend. It runs for days: lists are bounded and start()/stop() own
// every timer and the feed connection.
import { computed, reactive, ref } from 'vue'
import { listAlarms } from '../../api/alarms'
import { listCameras } from '../../api/cameras'
import { Feed } from '../../api/feed'
import { ApiError } from '../../api/http'
import { countByScene, statsAlarms, statsOverview } from '../../api/stats'
import type { AlarmItem } from '../../types/alarms'
import type { CameraItem } from '../../types/cameras'
import type { FeedAlarm, FeedState, FeedStats } from '../../types/feed'
import { zoneParts } from '../../composables/useSite'
import { isoLocal, startOfToday } from '../format'

const MAX_FEED = 50
const MAX_WALL = 24

export interface ScreenItem {
  id: string
  scene: string
  status: string
  camera: string
  area: string
  at: string
  snapshot: string
}

function replace(target: Record<string, number>, values: Record<string, number>): void {
  for (const k of Object.keys(target)) delete target[k]
  Object.assign(target, values)
}

/**
 * `noArea` names cameras without a location ("area / spot": the area is the part before the slash);
 * `onNew` hears of each new live alarm the feed brings (the screen's pop-up and sound).
 */
export function useScreenData(noArea: () => string, onNew?: (item: ScreenItem, alarm: FeedAlarm) => void) {
  const conn = ref<FeedState>('connecting')
  const feed = ref<ScreenItem[]>([])
  const wall = ref<ScreenItem[]>([])
  const byScene = reactive<Record<string, number>>({})
  const byArea = reactive<Record<string, number>>({})
  const trend = ref<{ labels: string[]; counts: number[] }>({ labels: [], counts: [] })
  const openCount = ref(0)
  const cameras = ref<CameraItem[]>([])
  const timers: number[] = []
  const cameraById = computed(() => Object.fromEntries(cameras.value.map((c) => [c.id, c])))
  const total = computed(() => Object.values(byScene).reduce((a, b) => a + b, 0))
  const online = computed(() => cameras.value.filter((c) => c.enabled && c.status === 'online').length)

  function areaOf(location: string | null | undefined): string {
    const a = (location ?? '').split('/')[0].trim()
    return a || noArea()
  }

  function fromAlarm(a: AlarmItem): ScreenItem {
    const cam = cameraById.value[a.camera_id]
    return {
      id: a.id,
      scene: a.scene,
      status: a.status,
      camera: a.camera_name ?? cam?.name ?? a.camera_id,
      area: areaOf(a.camera_location ?? cam?.location),
      at: a.occurred_at,
      snapshot: a.snapshot ?? '',
    }
  }

  function onAlarm(a: FeedAlarm): void {
    const known = feed.value.find((x) => x.id === a.id)
    if (known) {
      known.status = a.status // a later revision (confirmed, cleared ...) of an alarm on screen
      return
    }
    if (a.action && a.action !== 'raised') return // a revision of an alarm older than the list
    if (a.source === 'video') return // an uploaded video's alarm is history: not on the live screen
    const cam = a.camera?.id ? cameraById.value[a.camera.id] : undefined
    const item: ScreenItem = {
      id: a.id,
      scene: a.scene,
      status: a.status,
      camera: a.camera?.name ?? cam?.name ?? a.camera?.id ?? '',
      area: areaOf(a.camera?.location ?? cam?.location),
      at: a.occurred_at,
      snapshot: a.snapshot_url ?? '',
    }
    feed.value = [item, ...feed.value].slice(0, MAX_FEED)
    wall.value = [item, ...wall.value.filter((w) => w.id !== item.id)].slice(0, MAX_WALL)
    // Counted at once; the next statistics message or minute refresh brings the exact numbers.
    if (new Date(a.occurred_at) >= startOfToday()) {
      byScene[a.scene] = (byScene[a.scene] ?? 0) + 1
      byArea[item.area] = (byArea[item.area] ?? 0) + 1
    }
    openCount.value += 1
    onNew?.(item, a)
  }

  let haveOverview = false // /api/stats/overview counts the site's day; then the feed's stats only bring `open`

  function onStats(s: FeedStats): void {
    if (s.today_by_scene && !haveOverview) replace(byScene, s.today_by_scene)
    if (typeof s.open === 'number') openCount.value = s.open
  }

  const stream = new Feed({ onAlarm, onStats, onState: (s) => (conn.value = s) })

  async function loadCameras(): Promise<void> {
    try {
      cameras.value = await listCameras()
    } catch {
      // keep the last list: the screen shows what it knew
    }
  }

  async function loadCounts(): Promise<void> {
    const since = isoLocal(startOfToday())
    try {
      const o = await statsOverview()
      replace(byScene, o.today?.by_scene ?? {})
      openCount.value = Number(o.open_total ?? 0)
      haveOverview = true
    } catch (exc) {
      if (!(exc instanceof ApiError) || exc.status !== 404) return
      const res = await listAlarms({ since, limit: 500, source: 'live' }).catch(() => null)
      if (!res) return
      replace(byScene, countByScene(res.items))
    }
    try {
      const g = await statsAlarms({ group: 'camera', since })
      const areas: Record<string, number> = {}
      for (const it of g.items) {
        const area = areaOf(it.location ?? cameraById.value[it.key]?.location)
        areas[area] = (areas[area] ?? 0) + it.count
      }
      replace(byArea, areas)
    } catch {
      const areas: Record<string, number> = {}
      for (const i of feed.value) if (new Date(i.at) >= startOfToday()) areas[i.area] = (areas[i.area] ?? 0) + 1
      replace(byArea, areas)
    }
  }

  async function loadTrend(): Promise<void> {
    const until = new Date()
    const since = new Date(until.getTime() - 24 * 3600 * 1000)
    const hours: string[] = []
    // Hours on the site's clock, as the statistics group them.
    for (let i = 23; i >= 0; i--) hours.push(String(zoneParts(new Date(until.getTime() - i * 3600 * 1000)).hour).padStart(2, '0'))
    const m: Record<string, number> = {}
    try {
      const g = await statsAlarms({ group: 'hour', since: isoLocal(since), until: isoLocal(until) })
      for (const i of g.items) m[i.key] = i.count
    } catch {
      const res = await listAlarms({ since: isoLocal(since), limit: 500, source: 'live' }).catch(() => null)
      for (const a of res?.items ?? []) {
        const h = String(zoneParts(new Date(a.occurred_at)).hour).padStart(2, '0')
        m[h] = (m[h] ?? 0) + 1
      }
    }
    trend.value = { labels: hours, counts: hours.map((h) => m[h] ?? 0) }
  }

  async function loadLatest(): Promise<void> {
    try {
      const res = await listAlarms({ limit: MAX_FEED, source: 'live' })
      const items = res.items.map(fromAlarm)
      // Keep alarms the feed brought meanwhile; the list and the feed may overlap.
      const seen = new Set(items.map((i) => i.id))
      feed.value = [...feed.value.filter((i) => !seen.has(i.id)), ...items].slice(0, MAX_FEED)
      wall.value = feed.value.slice(0, MAX_WALL)
    } catch {
      // the feed fills the lists
    }
  }

  /** Cameras grouped by plant area, the biggest area first. */
  const plant = computed(() => {
    const groups: Record<string, CameraItem[]> = {}
    for (const c of cameras.value) (groups[areaOf(c.location)] ??= []).push(c)
    return Object.entries(groups)
      .map(([area, cams]) => ({ area, cams, online: cams.filter((c) => c.status === 'online').length }))
      .sort((a, b) => b.cams.length - a.cams.length)
  })

  async function start(): Promise<void> {
    // Subscribe before the first list load, so an alarm raised in between is not missed (the list
    // load keeps what the feed brought meanwhile).
    stream.start()
    await loadCameras()
    await Promise.all([loadLatest(), loadCounts()])
    void loadTrend()
    timers.push(
      window.setInterval(() => {
        void loadCameras()
        void loadCounts()
        void loadTrend()
      }, 60000),
    )
  }

  function stop(): void {
    stream.stop()
    for (const id of timers) window.clearInterval(id)
  }

  return { conn, feed, wall, byScene, byArea, trend, openCount, cameras, total, online, plant, start, stop }
}
