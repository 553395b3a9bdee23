// The big-screen feed: /api/feed/ws with resume from the last sequence number, reconnecting with
// exponential backoff (capped) so a screen rides out gateway restarts and network drops for days.

import type { FeedAlarm, FeedHandlers, FeedStats } from '../types/feed'

const MAX_BACKOFF_MS = 10000

export class Feed {
  private ws: WebSocket | null = null
  private timer: number | undefined
  private backoff = 1000
  private stopped = false
  lastSeq: number | null = null

  constructor(private readonly handlers: FeedHandlers) {}

  start(): void {
    this.stopped = false
    this.connect()
  }

  stop(): void {
    this.stopped = true
    window.clearTimeout(this.timer)
    const ws = this.ws
    this.ws = null
    if (ws) {
      ws.onclose = null
      ws.onerror = null
      ws.onmessage = null
      ws.close()
    }
  }

  private connect(): void {
    if (this.stopped) return
    this.handlers.onState('connecting')
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const since = this.lastSeq !== null ? `?since=${this.lastSeq}` : ''
    let ws: WebSocket
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/feed/ws${since}`)
    } catch {
      this.retry()
      return
    }
    this.ws = ws
    ws.onopen = () => {
      this.backoff = 1000
      this.handlers.onState('open')
    }
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return
      let msg: { type?: string; seq?: number; alarm?: FeedAlarm } & Partial<FeedStats>
      try {
        msg = JSON.parse(ev.data)
      } catch {
        return
      }
      if (msg.type === 'alarm' && msg.alarm && typeof msg.seq === 'number') {
        this.lastSeq = msg.seq
        this.handlers.onAlarm(msg.alarm, msg.seq)
      } else if (msg.type === 'stats') {
        this.handlers.onStats(msg as FeedStats)
      }
    }
    ws.onerror = () => undefined // onclose follows and schedules the retry
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null
      this.handlers.onState('closed')
      this.retry()
    }
  }

  private retry(): void {
    if (this.stopped) return
    window.clearTimeout(this.timer)
    const delay = this.backoff
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS)
    this.timer = window.setTimeout(() => this.connect(), delay)
  }
}
