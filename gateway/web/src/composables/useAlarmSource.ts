// Where an alarm came from: a live camera, or an uploaded video analysed offline (history, not now).
// The API marks an offline alarm with source "video", its job (video_job_id) and where in the video
// it happened (video_ts, seconds from the video's start).
import type { AlarmItem } from '../types/alarms'

export function isOfflineAlarm(a: Pick<AlarmItem, 'source'>): boolean {
  return a.source === 'video'
}

/** "00:01:23" into the video, or '' for a live alarm. */
export function videoOffset(a: Pick<AlarmItem, 'video_ts'>): string {
  if (a.video_ts === null || a.video_ts === undefined) return ''
  const s = Math.max(0, Math.floor(a.video_ts))
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`
}

/** A region's name for people: the scene's whole frame ("frame") in the user's language, else the name given. */
export function regionName(region: string | null | undefined, t: (key: string) => string): string {
  if (!region || region === 'frame') return t('alarms.wholeFrame')
  return region
}
