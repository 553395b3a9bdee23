// The message for a discovery that failed: "not available here" for a gateway without the feature.
import { ApiError, errText } from '../../api/http'

type T = (key: string, values?: Record<string, unknown>) => string

export function unavailable(t: T, exc: unknown, what: 'onvif' | 'gb'): string {
  if (exc instanceof ApiError && (exc.status === 404 || exc.status === 503)) {
    return t(what === 'onvif' ? 'cameras.onvifUnavailable' : 'cameras.gbUnavailable', { msg: exc.message })
  }
  return t('common.loadFailed', { msg: errText(exc) })
}
