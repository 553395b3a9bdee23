// The last upload's analysis job. It lives as long as the browser tab, so its progress survives
// leaving the video page; while the page shows it, it is polled until it ends.
import { reactive } from 'vue'
import { ApiError } from '../../api/http'
import { getJob } from '../../api/videos'
import type { UploadJob } from '../../types/videos'

const POLL_MS = 1500

export const uploadJob = reactive<UploadJob>({
  id: '',
  status: '',
  progress: 0,
  frames: 0,
  total_frames: null,
  alarms: [],
  error: null,
})

const running = (): boolean => uploadJob.status === 'queued' || uploadJob.status === 'running'

/** Follow the job until it ends; `onEnd` runs then (its alarms count in the library). stop() ends polling. */
export function followJob(onEnd: () => void) {
  let timer: number | undefined
  async function poll(): Promise<void> {
    window.clearTimeout(timer)
    timer = undefined
    if (!uploadJob.id || !running()) return
    try {
      Object.assign(uploadJob, await getJob(uploadJob))
    } catch (e) {
      // A restarted gateway forgets the running job (404): stop polling and say so.
      if (e instanceof ApiError && e.status === 404) Object.assign(uploadJob, { status: 'failed', error: e.message })
    }
    if (running()) timer = window.setTimeout(poll, POLL_MS)
    else onEnd()
  }
  function stop(): void {
    window.clearTimeout(timer)
    timer = undefined
  }
  return { poll, stop }
}
