// The sample grid's state: filters, the loaded pages of samples, and the tag filter applied locally.
import { computed, reactive, ref } from 'vue'
import { listSamples } from '../../api/samples'
import type { Sample } from '../../types/samples'
import { withFlag } from '../pages/actions'

const PAGE = 60

export interface SampleFilters {
  task: string
  origin: string
  camera_id: string
  scene: string
  label: string
  tag: string
  removed: boolean
}

export const ORIGINS = ['imported', 'confirmed_alarm', 'false_positive', 'capture']

export function originType(o: string): 'success' | 'danger' | 'info' | 'warning' {
  return o === 'confirmed_alarm' ? 'success' : o === 'false_positive' ? 'danger' : o === 'capture' ? 'warning' : 'info'
}

export function useSampleList() {
  const filters = reactive<SampleFilters>({ task: '', origin: '', camera_id: '', scene: '', label: '', tag: '', removed: false })
  const samples = ref<Sample[]>([])
  const next = ref<string | null>(null)
  const loading = ref(false)

  // The API filters by label but not by tag; tags are matched here, on the loaded page.
  const shown = computed(() => {
    const q = filters.tag.trim().toLowerCase()
    if (!q) return samples.value
    return samples.value.filter((s) =>
      Object.entries(s.tags ?? {}).some(([k, v]) => `${k}:${String(v)}`.toLowerCase().includes(q)),
    )
  })

  /** The first page for the filters (reset), or the next one. */
  async function load(reset: boolean): Promise<void> {
    await withFlag(loading, async () => {
      const res = await listSamples({
        task: filters.task,
        origin: filters.origin,
        camera_id: filters.camera_id,
        scene: filters.scene,
        label: filters.label.trim(),
        removed: filters.removed ? 'true' : undefined,
        before: reset ? undefined : next.value,
        limit: PAGE,
      })
      samples.value = reset ? res.items : [...samples.value, ...res.items]
      next.value = res.next
    })
  }

  /** A sample changed (its labels saved): the grid shows the new version. */
  function replace(updated: Sample): void {
    const i = samples.value.findIndex((x) => x.id === updated.id)
    if (i >= 0) samples.value[i] = { ...samples.value[i], labels: updated.labels }
  }

  function drop(id: string): void {
    samples.value = samples.value.filter((x) => x.id !== id)
  }

  return { filters, samples, shown, next, loading, load, replace, drop }
}
