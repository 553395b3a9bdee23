// Alarm KPIs (GET /api/stats/kpi) for the statistics page: one grouping at a time, live alarms only.
import { ref } from 'vue'
import { ElMessage } from 'element-plus'
import { api, apiUrl, errText } from '../../api/http'

export type KpiGroup = 'scene' | 'camera' | 'area' | 'period'

export interface KpiFigures {
  alarms: number
  alarms_per_hour: number | null
  confirmed_30s: number
  confirmed_30s_rate: number | null
  confirmed_true: number
  disposed_30min: number
  disposed_30min_rate: number | null
  open_over_24h: number
  peak_10min: number
  chattering: number
  flood_periods: number
  flood_minutes: number
}

export interface KpiRow extends KpiFigures {
  key: string
  name?: string | null
  name_zh?: string
  name_en?: string
}

export interface KpiFlood {
  alarm_id: string
  camera_id: string | null
  scene: string
  start: string
  end: string
}

export interface KpiResult {
  group: KpiGroup
  timezone: string
  since: string
  until: string
  hours: number
  total: KpiFigures
  items: KpiRow[]
  floods: KpiFlood[]
}

export function useKpi() {
  const data = ref<KpiResult | null>(null)
  const loading = ref(false)
  let generation = 0

  function query(group: KpiGroup, range: [Date, Date]): Record<string, string> {
    return { group, since: range[0].toISOString(), until: range[1].toISOString() }
  }

  async function load(group: KpiGroup, range: [Date, Date]): Promise<void> {
    const mine = ++generation
    loading.value = true
    try {
      const result = await api<KpiResult>('/api/stats/kpi', { query: query(group, range) })
      if (mine === generation) data.value = result
    } catch (e) {
      if (mine === generation) ElMessage.error(errText(e))
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  const csvUrl = (group: KpiGroup, range: [Date, Date]): string =>
    apiUrl('/api/stats/kpi', { ...query(group, range), format: 'csv' })

  return { data, loading, load, csvUrl }
}
