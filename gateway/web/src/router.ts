// Hash routes. Each page is src/pages/<Name>.vue found by glob, so a page another helper has not
// written yet shows a placeholder instead of breaking the build.
import { createRouter, createWebHashHistory, type RouteComponent, type RouteRecordRaw } from 'vue-router'
import Placeholder from './components/Placeholder.vue'
import { onUnauthorized } from './api/http'
import { auth, can, loadMe } from './composables/useAuth'
import { loadSite } from './composables/useSite'

const pages = import.meta.glob<{ default: RouteComponent }>('./pages/*.vue')

function page(name: string): () => Promise<RouteComponent> {
  const loader = pages[`./pages/${name}.vue`]
  if (!loader) return () => Promise.resolve(Placeholder)
  return () => loader().then((m) => m.default)
}

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
    bare?: boolean // no menu chrome (login, big screen)
    admin?: boolean
    nav?: string // menu item highlighted
  }
}

const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/overview' },
  { path: '/login', name: 'login', component: page('Login'), meta: { public: true, bare: true } },
  { path: '/overview', name: 'overview', component: page('Overview'), meta: { nav: 'overview' } },
  { path: '/stats', name: 'stats', component: page('Statistics'), meta: { nav: 'stats' } },
  { path: '/alarms', name: 'alarms', component: page('Alarms'), meta: { nav: 'alarms' } },
  { path: '/alarms/:id', name: 'alarm', component: page('AlarmDetail'), props: true, meta: { nav: 'alarms' } },
  { path: '/cameras', name: 'cameras', component: page('Cameras'), meta: { nav: 'cameras' } },
  {
    path: '/cameras/:id',
    name: 'camera',
    component: page('CameraDetail'),
    props: true,
    meta: { nav: 'cameras' },
  },
  { path: '/videos', name: 'videos', component: page('Videos'), meta: { nav: 'videos' } },
  { path: '/models', name: 'models', component: page('Models'), meta: { nav: 'models' } },
  { path: '/enrolments', name: 'enrolments', component: page('Enrolments'), meta: { nav: 'enrolments' } },
  { path: '/samples', name: 'samples', component: page('Samples'), meta: { nav: 'samples' } },
  { path: '/uplinks', name: 'uplinks', component: page('Uplinks'), meta: { nav: 'uplinks' } },
  { path: '/users', name: 'users', component: page('Users'), meta: { nav: 'users', admin: true } },
  { path: '/live', name: 'live', component: page('LiveWall'), meta: { nav: 'live' } },
  { path: '/screen', name: 'screen', component: page('BigScreen'), meta: { bare: true } },
  { path: '/:rest(.*)*', redirect: '/overview' },
]

export const router = createRouter({ history: createWebHashHistory(), routes })

// A 401 from any API call (an expired session) sends the user to the login page, back here after.
onUnauthorized(() => {
  const current = router.currentRoute.value
  if (current.name !== 'login') void router.push({ name: 'login', query: { next: current.fullPath } })
})

router.beforeEach(async (to) => {
  if (to.meta.public) return true
  if (!auth.checked || !auth.user) await loadMe()
  if (!auth.user) return { name: 'login', query: to.fullPath !== '/overview' ? { next: to.fullPath } : {} }
  await loadSite() // every time on the page is shown on the site's clock
  if (to.meta.admin && !can('admin')) return { name: 'overview' }
  return true
})
