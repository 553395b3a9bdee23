// One vue-i18n instance built from every locale module: each file is a namespace, and the pages
// helper's files join without touching this one.
import { createI18n } from 'vue-i18n'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Messages = Record<string, any>
const modules = import.meta.glob<{ default: { zh: Messages; en: Messages } }>('./locales/*.ts', {
  eager: true,
})

const messages: { zh: Messages; en: Messages } = { zh: {}, en: {} }
for (const mod of Object.values(modules)) {
  Object.assign(messages.zh, mod.default.zh)
  Object.assign(messages.en, mod.default.en)
}

export const LANG_KEY = 'vigil.lang'
export type Lang = 'zh' | 'en'

function initialLang(): Lang {
  try {
    return localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh'
  } catch {
    return 'zh'
  }
}

export const i18n = createI18n({
  legacy: false,
  locale: initialLang(),
  fallbackLocale: 'zh',
  messages,
  missingWarn: false,
  fallbackWarn: false,
})

export function setLang(lang: Lang): void {
  i18n.global.locale.value = lang
  try {
    localStorage.setItem(LANG_KEY, lang)
  } catch {
    // private mode: the choice lasts for this page only
  }
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en'
}

export function currentLang(): Lang {
  return i18n.global.locale.value as Lang
}

// A plain signature keeps vue-tsc from expanding the message schema type on every call.
const g = i18n.global as unknown as { te(key: string): boolean; t(key: string): string }

function translated(path: string, fallback: string): string {
  return g.te(path) ? g.t(path) : fallback
}

// Scene names come from the scene catalogue (GET /api/scenes): composables/useScenes.ts sceneName().

export function statusName(key: string): string {
  return translated(`common.status.${key}`, key)
}
