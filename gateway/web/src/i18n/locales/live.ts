export default {
  zh: {
    live: {
      title: '实时监控墙',
      hint: '画面约每 2 秒更新一次，取自摄像机正在分析的视频流',
      grid: '{n} 列',
      none: '没有启用的摄像机',
      noFrame: '暂无画面',
      open: '{n} 条未结束报警',
    },
  },
  en: {
    live: {
      title: 'Live wall',
      hint: "Pictures refresh about every 2 s, from the stream each camera's analysis decodes",
      grid: '{n} columns',
      none: 'No enabled camera',
      noFrame: 'No picture yet',
      open: '{n} open alarms',
    },
  },
}
