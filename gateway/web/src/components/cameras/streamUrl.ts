// The stream address rules of gateway/config/stream_url.py, checked while typing: a problem's key is
// looked up under cameras.urlProblem in the locale, with the same parameters the gateway uses.

export const SCHEMES = ['rtsp', 'rtsps', 'gb28181', 'file'] as const
const VIDEO_SUFFIXES = ['.mp4', '.avi', '.mkv', '.mov', '.ts', '.flv', '.m4v', '.h264', '.h265', '.264', '.265']
const LOOKS_LIKE_HOST = /^(\d{1,3}(\.\d{1,3}){3}|[A-Za-z0-9.-]+:\d+)(\/|$)/
const LABEL = '[A-Za-z0-9_][A-Za-z0-9_-]{0,62}'
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(\\.${LABEL})*$`)
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/

export interface UrlProblem {
  key: string
  params: Record<string, string | number>
}

function closest(scheme: string): string {
  const same = SCHEMES.find((s) => [...s].sort().join('') === [...scheme].sort().join(''))
  if (same) return same
  if (scheme.startsWith('http') || scheme.startsWith('rt')) return 'rtsp'
  return ''
}

function hostProblem(host: string): UrlProblem | null {
  if (host.includes(':')) return null // IPv6
  if (IPV4.test(host)) return null
  if (/^[\d.]+$/.test(host) || !HOST_NAME.test(host)) return { key: 'badHost', params: { host } }
  return null
}

/** null when the address is usable, else what is wrong with it. */
export function urlProblem(raw: string): UrlProblem | null {
  const url = raw.trim()
  if (!url) return { key: 'empty', params: {} }
  if (url.length > 1024) return { key: 'tooLong', params: { limit: 1024 } }
  if (/\s/.test(url)) return { key: 'spaces', params: {} }
  if (!url.includes('://')) {
    if (LOOKS_LIKE_HOST.test(url)) return { key: 'noScheme', params: { url } }
    if (/^(\/|\.\/|\.\.\/)/.test(url) || VIDEO_SUFFIXES.some((s) => url.toLowerCase().endsWith(s))) return null
    return { key: 'notAPath', params: { url } }
  }
  const scheme = url.split('://', 1)[0].toLowerCase()
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    const suggest = closest(scheme)
    return { key: suggest ? 'badSchemeHint' : 'badScheme', params: { scheme, suggest } }
  }
  if (scheme === 'file') return url.length > 'file://'.length ? null : { key: 'noFile', params: {} }
  const rest = url.slice(scheme.length + 3)
  const authority = rest.split(/[/?#]/, 1)[0]
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1)
  let host = hostPort
  let port = ''
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']')
    host = hostPort.slice(1, end < 0 ? undefined : end)
    port = end < 0 ? '' : hostPort.slice(end + 2)
  } else if (hostPort.includes(':')) {
    host = hostPort.slice(0, hostPort.lastIndexOf(':'))
    port = hostPort.slice(hostPort.lastIndexOf(':') + 1)
  }
  if (!host) return { key: 'noHost', params: {} }
  if (scheme === 'gb28181') return rest.slice(authority.length).replace(/\//g, '') ? null : { key: 'gbForm', params: {} }
  if (port !== '' && (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    return { key: 'badPort', params: {} }
  }
  return hostProblem(host)
}
