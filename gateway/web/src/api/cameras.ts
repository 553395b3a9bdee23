// Cameras: listing, configuration, snapshots, and finding new ones (ONVIF, GB/T 28181).
import type {
  CameraConfig,
  CameraItem,
  ConnectionTest,
  GbDevice,
  NewCamera,
  OnvifDevice,
  OnvifProbe,
} from '../types/cameras'
import { api, apiUrl, isMissingRoute, post, seg } from './http'

export const listCameras = async (): Promise<CameraItem[]> =>
  (await api<{ items: CameraItem[] }>('/api/cameras')).items

/** The camera list, or an empty one when it cannot be read (a role without cameras:read still works). */
export async function listCamerasOrNone(): Promise<CameraItem[]> {
  try {
    return await listCameras()
  } catch {
    return []
  }
}

export const getCamera = (id: string): Promise<CameraItem> => api<CameraItem>(`/api/cameras/${seg(id)}`)

/** The full configuration; null on a gateway without GET /api/cameras/{id}/config. */
export async function getCameraConfig(id: string): Promise<Partial<CameraConfig> | null> {
  try {
    return await api<Partial<CameraConfig>>(`/api/cameras/${seg(id)}/config`)
  } catch (exc) {
    if (isMissingRoute(exc)) return null
    throw exc
  }
}

export const createCamera = (body: NewCamera): Promise<CameraItem> => post<CameraItem>('/api/cameras', body)

/** Open a stream address once: codec, size and fps, or why not (camera_id: its stored address for ***). */
export const testConnection = (body: { url: string; transport: string; camera_id?: string }): Promise<ConnectionTest> =>
  post<ConnectionTest>('/api/cameras/test', body)

export const putCamera = (id: string, body: CameraConfig): Promise<CameraItem | undefined> =>
  api<CameraItem | undefined>(`/api/cameras/${seg(id)}`, { method: 'PUT', body })

export const deleteCamera = (id: string): Promise<unknown> => api(`/api/cameras/${seg(id)}`, { method: 'DELETE' })

export const snapshotPath = (id: string): string => `/api/cameras/${seg(id)}/snapshot`

/** A fresh snapshot URL (the time defeats the browser cache). */
export const snapshotUrl = (id: string): string => apiUrl(snapshotPath(id), { t: Date.now() })

/** Fetch the snapshot only to learn why it fails (an <img> does not tell). */
export const probeSnapshot = (id: string): Promise<unknown> => api(snapshotPath(id))
/** Take the camera's current picture as its video diagnosis reference (after it was turned on purpose). */
export const resetDiagnosisReference = (id: string): Promise<unknown> => post(`/api/cameras/${seg(id)}/diagnosis/reference`)

type Listing<T> = T[] | { items?: T[]; devices?: T[] }
const itemsOf = <T>(res: Listing<T>): T[] => (Array.isArray(res) ? res : (res.items ?? res.devices ?? []))

export const discoverOnvif = async (): Promise<OnvifDevice[]> =>
  itemsOf(await api<Listing<OnvifDevice>>('/api/discovery/onvif'))

export const probeOnvif = (body: { host: string; port: number; username: string; password: string }): Promise<OnvifProbe> =>
  post<OnvifProbe>('/api/discovery/onvif/probe', body)

export const listGbDevices = async (): Promise<GbDevice[]> =>
  itemsOf(await api<Listing<GbDevice>>('/api/gb28181/devices'))
