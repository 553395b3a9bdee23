export default {
  zh: {
    overview: {
      title: '综合展示',
      today: '今日报警',
      week: '本周报警',
      openHandled: '未结束 / 本周已处理',
      camerasOnline: '摄像机在线',
      latest: '最新报警',
      noAlarms: '暂无报警',
      byScene: '各场景报警（今日 / 本周）',
      legend: '数字：今日 / 本周',
      uplinks: '上报通道状态',
      noUplinks: '未配置上报通道',
      backlog: '积压 {n} · 死信 {d}',
    },
  },
  en: {
    overview: {
      title: 'Overview',
      today: 'Alarms today',
      week: 'Alarms this week',
      openHandled: 'Open / handled this week',
      camerasOnline: 'Cameras online',
      latest: 'Latest alarms',
      noAlarms: 'No alarms',
      byScene: 'Alarms by scene (today / week)',
      legend: 'Numbers: today / this week',
      uplinks: 'Uplink health',
      noUplinks: 'No uplink configured',
      backlog: 'backlog {n} · dead {d}',
    },
  },
}
