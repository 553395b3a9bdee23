// The camera list behind the camera pickers and id-to-name lookups of several pages.
import { api } from '../api'
import type { CameraItem } from './format'

/** GET /api/cameras, or an empty list when it cannot be read (a role without cameras:read still works). */
export async function fetchCameras(): Promise<CameraItem[]> {
  try {
    return (await api<{ items: CameraItem[] }>('/api/cameras')).items
  } catch {
    return []
  }
}
