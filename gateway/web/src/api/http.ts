// The console's one HTTP core: JSON calls and uploads to the gateway API. The session cookie
// (httpOnly, same origin) authenticates every call, so no header is needed. A 401 is reported to the
// handler registered with onUnauthorized() (the router sends the user to the login page); this module
// imports no router, so the API modules stay free of the UI.

export class ApiError extends Error {
  status: number
  details: unknown
  constructor(status: number, message: string, details?: unknown) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.details = details
  }
}

export type Query = Record<string, string | number | boolean | undefined | null>

type UnauthorizedHandler = () => void
let unauthorized: UnauthorizedHandler = () => undefined

/** Register what a 401 answer does (the router registers "go to the login page"). */
export function onUnauthorized(handler: UnauthorizedHandler): void {
  unauthorized = handler
}

/** The console's language (i18n/index.ts keeps it under this key): the gateway words its messages in it. */
export function userLang(): string {
  try {
    return localStorage.getItem('vigil.lang') === 'en' ? 'en' : 'zh'
  } catch {
    return 'zh'
  }
}

export function apiUrl(path: string, query?: Query): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v))
  }
  const qs = params.toString()
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path
}

/** A path segment with its reserved characters escaped (ids and names go into paths). */
export const seg = (s: string | number): string => encodeURIComponent(String(s))

function errorMessage(status: number, text: string): { message: string; details?: unknown } {
  try {
    const body = JSON.parse(text) as { error?: { message?: string; details?: unknown } }
    if (body.error?.message) return { message: body.error.message, details: body.error.details }
  } catch {
    // not JSON: a proxy error page or similar
  }
  return { message: text.trim().slice(0, 300) || `HTTP ${status}` }
}

export interface RequestOptions {
  method?: string
  body?: unknown
  query?: Query
  headers?: Record<string, string>
}

export async function api<T = unknown>(path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = {
    Accept: 'application/json',
    'Accept-Language': userLang(),
    ...(opts.headers ?? {}),
  }
  let body: BodyInit | undefined
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  let response: Response
  try {
    response = await fetch(apiUrl(path, opts.query), {
      method: opts.method ?? (body ? 'POST' : 'GET'),
      headers,
      body,
      credentials: 'same-origin',
    })
  } catch (exc) {
    throw new ApiError(0, `gateway unreachable (${(exc as Error).message})`)
  }
  const text = await response.text()
  if (response.status === 401 && !path.startsWith('/api/auth/login')) unauthorized()
  if (!response.ok) {
    const { message, details } = errorMessage(response.status, text)
    throw new ApiError(response.status, message, details)
  }
  if (!text) return undefined as T
  const type = response.headers.get('Content-Type') ?? ''
  return (type.includes('json') ? JSON.parse(text) : text) as T
}

/** POST JSON (or nothing) and read the answer. */
export function post<T = unknown>(path: string, body?: unknown, query?: Query): Promise<T> {
  return api<T>(path, { method: 'POST', body, query })
}

/**
 * POST a form or a raw body (the video and data-set import routes read the body itself, then pass its
 * `contentType`) with upload progress (XMLHttpRequest, since fetch() cannot report it). Errors and 401 as api().
 */
export function upload<T = unknown>(
  path: string,
  form: FormData | Blob,
  onProgress?: (fraction: number) => void,
  contentType?: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', path)
    xhr.withCredentials = true
    xhr.setRequestHeader('Accept', 'application/json')
    if (contentType) xhr.setRequestHeader('Content-Type', contentType)
    if (onProgress) {
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total)
      }
    }
    xhr.onerror = () => reject(new ApiError(0, 'gateway unreachable during upload'))
    xhr.onload = () => {
      if (xhr.status === 401) unauthorized()
      if (xhr.status < 200 || xhr.status >= 300) {
        const { message, details } = errorMessage(xhr.status, xhr.responseText)
        reject(new ApiError(xhr.status, message, details))
        return
      }
      onProgress?.(1)
      try {
        resolve((xhr.responseText ? JSON.parse(xhr.responseText) : undefined) as T)
      } catch {
        resolve(xhr.responseText as unknown as T)
      }
    }
    xhr.send(form)
  })
}

/** Send a file as the raw request body with upload progress (see upload() for errors and 401). */
export function sendRaw<T = unknown>(
  path: string,
  query: Query,
  body: Blob,
  contentType: string,
  onProgress?: (fraction: number) => void,
): Promise<T> {
  return upload<T>(apiUrl(path, query), body, onProgress, contentType)
}

/** Read a File as bare base64 (no data: prefix), the form the lifecycle API expects for pictures. */
export function fileToBase64(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onerror = () => reject(reader.error ?? new Error('cannot read file'))
    reader.onload = () => {
      const url = String(reader.result)
      resolve(url.slice(url.indexOf(',') + 1))
    }
    reader.readAsDataURL(file)
  })
}

/** A message for an error caught from api()/upload(), for ElMessage. */
export function errText(exc: unknown): string {
  if (exc instanceof ApiError) return exc.message
  if (exc instanceof Error) return exc.message
  return String(exc)
}

/** Whether an error says the gateway has no such route (an older gateway): 404/405 naming a route. */
export function isMissingRoute(exc: unknown, statuses: number[] = [404]): boolean {
  return exc instanceof ApiError && statuses.includes(exc.status) && exc.message.includes('route')
}
