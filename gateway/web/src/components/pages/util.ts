// Helpers shared by the statistics, video, model, sample, uplink and user pages.
import { ApiError, apiUrl } from '../../api'

type Query = Record<string, string | number | boolean | undefined | null>

/**
 * Send a file as the raw request body (the video and data-set import routes read the body itself, not a
 * multipart form), with upload progress. Errors become ApiError with the server's message; 401 goes to login.
 */
export function sendRaw<T = any>(
  path: string,
  query: Query,
  body: Blob,
  contentType: string,
  onProgress?: (fraction: number) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', apiUrl(path, query))
    xhr.withCredentials = true
    xhr.setRequestHeader('Content-Type', contentType)
    if (onProgress) {
      xhr.upload.onprogress = (ev) => {
        if (ev.lengthComputable && ev.total > 0) onProgress(ev.loaded / ev.total)
      }
    }
    xhr.onload = () => {
      let data: any = null
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null
      } catch {
        data = null
      }
      if (xhr.status === 401) {
        window.location.hash = '#/login'
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress?.(1)
        resolve(data as T)
      } else {
        const msg = data?.error?.message ?? `${xhr.status} ${xhr.statusText}`
        reject(new ApiError(xhr.status, msg))
      }
    }
    xhr.onerror = () => reject(new ApiError(0, 'gateway unreachable during upload'))
    xhr.send(body)
  })
}

/** Local datetime string of an ISO time, or '-' for none. */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '-'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return iso
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

/** Human duration of a number of seconds (s / min / h / d). */
export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '-'
  const s = Math.abs(seconds)
  if (s < 60) return `${s.toFixed(0)} s`
  if (s < 3600) return `${(s / 60).toFixed(1)} min`
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`
  return `${(s / 86400).toFixed(1)} d`
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-'
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`
}

export function fmtPct(v: number | null | undefined, digits = 1): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '-'
  return `${(v * 100).toFixed(digits)}%`
}

/** The message of any thrown value, for ElMessage. */
export function errText(e: unknown): string {
  if (e instanceof Error) return e.message
  return String(e)
}

/** Trigger a browser download of a URL (CSV and zip links of the API; the session cookie goes along). */
export function download(url: string, filename?: string) {
  const a = document.createElement('a')
  a.href = url
  if (filename) a.download = filename
  document.body.appendChild(a)
  a.click()
  a.remove()
}
