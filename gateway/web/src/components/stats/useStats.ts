// The statistics page's data: every grouping for the chosen period, scene and camera, loaded
// together; a newer load supersedes one still running.
import { reactive, ref } from 'vue'
import { ElMessage } from 'element-plus'
import { errText } from '../../api/http'
import { statsAlarms, statsCsvUrl, statsDisposal } from '../../api/stats'
import type { DisposalResult, GroupResult, StatsQuery } from '../../types/stats'

export interface StatsData {
  byDay: GroupResult | null
  byHour: GroupResult | null
  byWeekday: GroupResult | null
  byCamera: GroupResult | null
  byScene: GroupResult | null
  disposal: DisposalResult | null
}

export interface StatsFilter {
  range: [Date, Date]
  scene: string
  cameraId: string
  compare: boolean
}

export function useStats(filter: StatsFilter) {
  const data = reactive<StatsData>({ byDay: null, byHour: null, byWeekday: null, byCamera: null, byScene: null, disposal: null })
  const loading = ref(false)
  const elapsed = ref<number | null>(null)

  function params(extra: StatsQuery = {}): StatsQuery {
    return {
      since: filter.range[0].toISOString(),
      until: filter.range[1].toISOString(),
      scene: filter.scene || undefined,
      camera_id: filter.cameraId || undefined,
      ...extra,
    }
  }

  /** The CSV export of a grouping (disposal is by scene over every camera). */
  function csv(path: '/api/stats/alarms' | '/api/stats/disposal', group?: string): string {
    const q: StatsQuery = {}
    if (group) {
      q.group = group
      if (filter.compare) q.compare = 1
    }
    if (path.endsWith('/disposal')) return statsCsvUrl(path, { ...params(q), camera_id: undefined })
    return statsCsvUrl(path, params(q))
  }

  const group = (g: string): Promise<GroupResult> => statsAlarms(params({ group: g, compare: filter.compare ? 1 : undefined }))

  let generation = 0
  async function load(): Promise<void> {
    if (!filter.range) return
    const mine = ++generation
    loading.value = true
    const started = performance.now()
    try {
      const [d, h, w, c, s, disp] = await Promise.all([
        group('day'),
        group('hour'),
        group('weekday'),
        group('camera'),
        group('scene'),
        statsDisposal({ ...params(), camera_id: undefined }),
      ])
      if (mine !== generation) return // a newer request superseded this one
      Object.assign(data, { byDay: d, byHour: h, byWeekday: w, byCamera: c, byScene: s, disposal: disp })
      elapsed.value = Math.round(performance.now() - started)
    } catch (e) {
      if (mine === generation) ElMessage.error(errText(e))
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  return { data, loading, elapsed, load, csv }
}
