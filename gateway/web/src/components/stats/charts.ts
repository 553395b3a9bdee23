// The ECharts options of the statistics page, built from the API's grouped counts.
import type { DisposalResult, DisposalRow, GroupResult } from '../../types/stats'

const CAMERA_TOP = 15
const baseGrid = { left: 40, right: 16, top: 30, bottom: 28, containLabel: true }

export interface ChartText {
  current: string
  previous: string
  t: (key: string) => string
  /** A scene's name, from the catalogue or the row's own names. */
  sceneLabel: (row: { scene?: string; key?: string; name_zh?: string; name_en?: string }) => string
}

function series(res: GroupResult | null, compare: boolean, text: ChartText, kind: 'bar' | 'line', extra: Record<string, unknown> = {}) {
  const out: Record<string, unknown>[] = [{ name: text.current, type: kind, data: res?.items.map((i) => i.count) ?? [], ...extra }]
  if (compare && res?.previous) {
    out.push({
      name: text.previous,
      type: kind,
      data: res.items.map((i) => i.previous ?? 0),
      itemStyle: { color: '#b1b3b8' },
      lineStyle: { type: 'dashed', color: '#b1b3b8' },
      ...extra,
    })
  }
  return out
}

export function dayOption(res: GroupResult | null, compare: boolean, text: ChartText) {
  return {
    tooltip: {
      trigger: 'axis',
      formatter: (ps: { dataIndex: number; seriesName: string; value: number; marker: string }[]) => {
        const it = res?.items[ps[0]?.dataIndex ?? 0]
        return ps
          .map((p) => {
            const day = p.seriesName === text.previous ? (it?.previous_key ?? '') : (it?.key ?? '')
            return `${p.marker}${p.seriesName} ${day}: <b>${p.value}</b>`
          })
          .join('<br/>')
      },
    },
    legend: { top: 0 },
    grid: baseGrid,
    xAxis: { type: 'category', data: res?.items.map((i) => i.key.slice(5)) ?? [] },
    yAxis: { type: 'value', minInterval: 1 },
    dataZoom: (res?.items.length ?? 0) > 62 ? [{ type: 'inside' }, { type: 'slider', height: 14, bottom: 0 }] : [],
    series: series(res, compare, text, 'line', { smooth: true, symbolSize: 4, areaStyle: { opacity: 0.08 } }),
  }
}

/** Counts by hour of day or by weekday: bars over the group's keys. */
export function barOption(res: GroupResult | null, compare: boolean, text: ChartText, label: (key: string) => string) {
  return {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: baseGrid,
    xAxis: { type: 'category', data: res?.items.map((i) => label(i.key)) ?? [] },
    yAxis: { type: 'value', minInterval: 1 },
    series: series(res, compare, text, 'bar'),
  }
}

export function cameraOption(res: GroupResult | null, compare: boolean, text: ChartText) {
  // Top cameras, the riskiest at the top of a horizontal bar chart.
  const top = (res?.items ?? []).slice(0, CAMERA_TOP).reverse()
  const sliced = res ? { ...res, items: top } : null
  return {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { top: 0 },
    grid: { ...baseGrid, left: 10 },
    yAxis: {
      type: 'category',
      data: top.map((i) => i.name || i.camera_id || text.t('stats.unknownCamera')),
      axisLabel: { width: 110, overflow: 'truncate' },
    },
    xAxis: { type: 'value', minInterval: 1 },
    series: series(sliced, compare, text, 'bar'),
  }
}

export function sceneOption(res: GroupResult | null, text: ChartText) {
  return {
    tooltip: { trigger: 'item', formatter: '{b}: {c} ({d}%)' },
    legend: { type: 'scroll', orient: 'vertical', right: 0, top: 'middle' },
    series: [
      {
        name: text.current,
        type: 'pie',
        radius: ['38%', '68%'],
        center: ['38%', '52%'],
        label: { show: false },
        data: (res?.items ?? []).filter((i) => i.count > 0).map((i) => ({ name: text.sceneLabel(i), value: i.count })),
      },
    ],
  }
}

export function disposalOption(res: DisposalResult | null, text: ChartText) {
  const items = res?.items ?? []
  const stack = (name: string, key: keyof DisposalRow, color: string, stackName: string) => ({
    name,
    type: 'bar',
    stack: stackName,
    itemStyle: { color },
    data: items.map((i) => i[key] as number),
  })
  const t = text.t
  return {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
    legend: { top: 0 },
    grid: baseGrid,
    xAxis: { type: 'category', data: items.map((i) => text.sceneLabel(i)) },
    yAxis: { type: 'value', minInterval: 1 },
    series: [
      stack(t('stats.handled'), 'handled', '#67c23a', 'status'),
      stack(t('stats.open'), 'open', '#e6a23c', 'status'),
      stack(t('stats.trueShort'), 'confirmed_true', '#f56c6c', 'verdict'),
      stack(t('stats.falseShort'), 'rejected_false', '#909399', 'verdict'),
      stack(t('stats.unverified'), 'unverified', '#dcdfe6', 'verdict'),
    ],
  }
}
