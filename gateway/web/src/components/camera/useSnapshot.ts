// The camera's picture as a chain of snapshots: the next is asked for only when the last has loaded
// (a slow camera never gets overlapping grabs); a failure is explained once and retried later.
import { onBeforeUnmount, ref } from 'vue'
import { probeSnapshot, snapshotUrl } from '../../api/cameras'
import { errText } from '../../api/http'

export function useSnapshot(cameraId: () => string) {
  const url = ref('')
  const error = ref('')
  let timer: number | undefined
  let alive = true

  function next(delay: number): void {
    window.clearTimeout(timer)
    if (!alive) return
    timer = window.setTimeout(() => (url.value = snapshotUrl(cameraId())), delay)
  }
  function onLoad(): void {
    error.value = ''
    next(2000)
  }
  async function onError(): Promise<void> {
    // An <img> does not tell why: ask once with fetch for the gateway's message.
    try {
      await probeSnapshot(cameraId())
    } catch (exc) {
      error.value = errText(exc)
    }
    next(5000)
  }

  onBeforeUnmount(() => {
    alive = false
    window.clearTimeout(timer)
  })
  return { url, error, start: () => next(0), onLoad, onError }
}
