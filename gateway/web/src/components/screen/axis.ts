// Axis colours of the big screen's dark charts.
export const axis = {
  axisLine: { lineStyle: { color: '#2f5c8a' } },
  axisLabel: { color: '#9ec3ff' },
  splitLine: { lineStyle: { color: '#13345a' } },
}
