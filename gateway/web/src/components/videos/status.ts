// Job and replay status colours and names, shared by the video page's cards.
import { useI18n } from 'vue-i18n'

export function jobStatusType(s: string): 'success' | 'danger' | 'warning' | 'info' {
  return s === 'done' ? 'success' : s === 'failed' ? 'danger' : s === 'running' ? 'warning' : 'info'
}

/** Translated job status and kind names (the raw value when there is no translation). */
export function useJobText() {
  const { t, te } = useI18n()
  return {
    statusText: (s: string): string => (te(`videos.statuses.${s}`) ? t(`videos.statuses.${s}`) : s),
    kindText: (k: string): string => (te(`videos.kinds.${k}`) ? t(`videos.kinds.${k}`) : k),
  }
}
