// The camera list behind the camera pickers and id-to-name lookups of several pages.
import { computed, onMounted, ref } from 'vue'
import { listCamerasOrNone } from '../api/cameras'
import type { CameraItem } from '../types/cameras'

/**
 * The cameras (an empty list when the role cannot read them: names fall back to ids), loaded when the
 * component mounts unless `immediate` is false; `reload()` reads them again.
 */
export function useCameras(immediate = true) {
  const cameras = ref<CameraItem[]>([])
  const loaded = ref(false)
  async function reload(): Promise<CameraItem[]> {
    cameras.value = await listCamerasOrNone()
    loaded.value = true
    return cameras.value
  }
  if (immediate) onMounted(() => void reload())
  const byId = computed(() => Object.fromEntries(cameras.value.map((c) => [c.id, c])) as Record<string, CameraItem>)
  return {
    cameras,
    loaded,
    reload,
    byId,
    /** The camera's name, else its id. */
    cameraName: (id: string): string => byId.value[id]?.name || id,
  }
}
