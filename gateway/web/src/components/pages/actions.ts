// The busy-flag / error-message / confirm wrapping that every console page's actions share.
import type { Ref } from 'vue'
import { ElMessage, ElMessageBox } from 'element-plus'
import { errText } from '../../api/http'

/**
 * Run an action with `flag` (a loading or busy ref) set while it runs; a failure shows its message (through
 * `say` when given) instead of escaping. Resolves true when the action succeeded.
 */
export async function withFlag(
  flag: Ref<boolean> | null,
  run: () => Promise<unknown>,
  say: (msg: string) => string = (msg) => msg,
): Promise<boolean> {
  if (flag) flag.value = true
  try {
    await run()
    return true
  } catch (e) {
    ElMessage.error(say(errText(e)))
    return false
  } finally {
    if (flag) flag.value = false
  }
}

/** Ask before a destructive or bulk action: true when the user accepted, false when they cancelled. */
export async function confirmed(message: string, title: string): Promise<boolean> {
  try {
    await ElMessageBox.confirm(message, title, { type: 'warning' })
    return true
  } catch {
    return false
  }
}
