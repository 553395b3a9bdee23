// Alerts for new alarms, in the console and on the big screen: a pop-up with the picture, a sound by
// priority (mutable), an unread count and, when the user turns them on, browser notifications. The
// choices are remembered in localStorage. The console learns of new alarms by polling the alarm list
// (startWatching); the big screen hands over what its feed brings (alert()).
import { reactive, ref } from 'vue'
import { listAlarms } from '../api/alarms'
import { listCamerasOrNone } from '../api/cameras'
import type { AlarmItem } from '../types/alarms'
import { isOfflineAlarm } from './useAlarmSource'

export const ALERTS_KEY = 'vigil.alerts'
const POLL_MS = 3000
const MAX_QUEUE = 20

export interface AlertSettings {
  sound: boolean // play a sound for a new alarm
  minPriority: number // alarms below this priority pop up silently
  notify: boolean // also a browser notification (asks the browser's permission)
}

export interface AlertItem {
  id: string
  scene: string
  priority: number
  camera: string
  occurredAt: string
  snapshot: string
  message: string
}

function loadSettings(): AlertSettings {
  const fallback: AlertSettings = { sound: true, minPriority: 0, notify: false }
  try {
    const raw = JSON.parse(localStorage.getItem(ALERTS_KEY) ?? '{}') as Partial<AlertSettings>
    return {
      sound: typeof raw.sound === 'boolean' ? raw.sound : fallback.sound,
      minPriority: typeof raw.minPriority === 'number' ? Math.min(4, Math.max(0, raw.minPriority)) : 0,
      notify: typeof raw.notify === 'boolean' ? raw.notify : fallback.notify,
    }
  } catch {
    return fallback
  }
}

export const alertSettings = reactive<AlertSettings>(loadSettings())
/** New alarms not yet looked at (the list page and "view" reset it). */
export const unread = ref(0)
/** Alarms waiting in the pop-up, the newest first. */
export const popup = ref<AlertItem[]>([])

export function saveAlertSettings(): void {
  try {
    localStorage.setItem(ALERTS_KEY, JSON.stringify(alertSettings))
  } catch {
    // private mode: the choice lasts for this page only
  }
}

// --- sound ---------------------------------------------------------------------------------------

let audio: AudioContext | null = null

function audioContext(): AudioContext | null {
  if (audio) return audio
  const Ctor = window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext
  if (!Ctor) return null
  audio = new Ctor()
  return audio
}

/** Browsers start audio suspended until the user touches the page: resume on the first touch. */
function unlockOnGesture(): void {
  const unlock = (): void => {
    void audioContext()?.resume().catch(() => undefined)
    window.removeEventListener('pointerdown', unlock)
    window.removeEventListener('keydown', unlock)
  }
  window.addEventListener('pointerdown', unlock)
  window.addEventListener('keydown', unlock)
}
unlockOnGesture()

/** Tones of each priority: 4-3 (severe, urgent) a two-tone siren, 2 two beeps, 0-1 one soft beep. */
function tones(priority: number): { hz: number; at: number; len: number }[] {
  if (priority >= 3) {
    return [0, 1, 2, 3, 4, 5].map((i) => ({ hz: i % 2 ? 660 : 880, at: i * 0.22, len: 0.2 }))
  }
  if (priority === 2) return [0, 1].map((i) => ({ hz: 740, at: i * 0.3, len: 0.18 }))
  return [{ hz: 520, at: 0, len: 0.25 }]
}

/** Play the sound of a priority now (also the settings' "test sound"). */
export function playAlertSound(priority: number): void {
  const ctx = audioContext()
  if (!ctx) return
  void ctx.resume().catch(() => undefined)
  const t0 = ctx.currentTime + 0.02
  for (const tone of tones(priority)) {
    const osc = ctx.createOscillator()
    const gain = ctx.createGain()
    osc.type = priority >= 3 ? 'square' : 'sine'
    osc.frequency.value = tone.hz
    gain.gain.setValueAtTime(0.0001, t0 + tone.at)
    gain.gain.exponentialRampToValueAtTime(0.25, t0 + tone.at + 0.02)
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + tone.at + tone.len)
    osc.connect(gain).connect(ctx.destination)
    osc.start(t0 + tone.at)
    osc.stop(t0 + tone.at + tone.len + 0.02)
  }
}

// --- browser notifications -----------------------------------------------------------------------

export function notificationsSupported(): boolean {
  return typeof window.Notification === 'function'
}

/** Turn notifications on or off; on asks the browser's permission and answers whether it was granted. */
export async function setNotify(on: boolean): Promise<boolean> {
  if (!on || !notificationsSupported()) {
    alertSettings.notify = false
    saveAlertSettings()
    return !on
  }
  const granted =
    Notification.permission === 'granted' ||
    (Notification.permission !== 'denied' && (await Notification.requestPermission()) === 'granted')
  alertSettings.notify = granted
  saveAlertSettings()
  return granted
}

function notify(item: AlertItem, title: string, open: (id: string) => void): void {
  if (!alertSettings.notify || !notificationsSupported() || Notification.permission !== 'granted') return
  try {
    const n = new Notification(title, { body: `${item.camera} · ${item.message}`, tag: `vigil-${item.id}`, icon: item.snapshot || undefined })
    n.onclick = () => {
      window.focus()
      open(item.id)
      n.close()
    }
  } catch {
    // some browsers allow notifications only from a service worker: the pop-up is enough
  }
}

// --- alerts --------------------------------------------------------------------------------------

export interface AlertHooks {
  title: (item: AlertItem) => string // the notification's title (the scene's name in the user's language)
  open: (id: string) => void // what clicking a notification does
}

/** A new alarm: into the pop-up, counted unread, with its sound and notification. */
export function alert(item: AlertItem, hooks: AlertHooks): void {
  if (popup.value.some((p) => p.id === item.id)) return
  popup.value = [item, ...popup.value].slice(0, MAX_QUEUE)
  unread.value += 1
  if (alertSettings.sound && item.priority >= alertSettings.minPriority) playAlertSound(item.priority)
  notify(item, hooks.title(item), hooks.open)
}

export function dismiss(id?: string): void {
  popup.value = id ? popup.value.filter((p) => p.id !== id) : []
}

export function markRead(): void {
  unread.value = 0
}

export function alertFromAlarm(a: AlarmItem, camera?: string): AlertItem {
  return {
    id: a.id,
    scene: a.scene,
    priority: a.priority,
    camera: a.camera_name ?? camera ?? a.camera_id,
    occurredAt: a.occurred_at,
    snapshot: a.snapshot === null ? '' : (a.snapshot ?? `/api/alarms/${a.id}/snapshot`),
    message: a.message,
  }
}

// --- the console's watch -------------------------------------------------------------------------

let timer: number | undefined
let newest: string | null = null // the newest alarm id seen (ULIDs sort by creation time)
let cameraNames: Record<string, string> = {}

async function loadCameraNames(): Promise<void> {
  cameraNames = Object.fromEntries((await listCamerasOrNone()).map((c) => [c.id, c.name]))
}

async function poll(hooks: AlertHooks): Promise<void> {
  let items: AlarmItem[]
  try {
    items = (await listAlarms({ limit: 20 })).items
  } catch {
    return // gateway away or logged out: the next round tries again
  }
  const fresh = newest === null ? [] : items.filter((a) => a.id > (newest as string))
  if (fresh.some((a) => !(a.camera_id in cameraNames))) await loadCameraNames().catch(() => undefined)
  for (const a of items) if (newest === null || a.id > newest) newest = a.id
  // Alarms found in an uploaded video are history, not something happening now: no alert.
  for (const a of fresh.reverse()) if (!isOfflineAlarm(a) && a.status === 'raised') alert(alertFromAlarm(a, cameraNames[a.camera_id]), hooks)
}

/** Watch for new alarms (the console shell calls it once logged in); alarms older than now never alert. */
export function startWatching(hooks: AlertHooks): void {
  if (timer !== undefined) return
  void poll(hooks)
  timer = window.setInterval(() => void poll(hooks), POLL_MS)
}

export function stopWatching(): void {
  window.clearInterval(timer)
  timer = undefined
  newest = null
  popup.value = []
  unread.value = 0
}
