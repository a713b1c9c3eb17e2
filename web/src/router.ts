import { createRouter, createWebHistory, type RouteLocationNormalized, type RouteLocationRaw, type RouteRecordRaw } from 'vue-router'
import { loadAuthState } from './composables/useAuth'
import { can, session, type Role } from './lib/session'
import OverviewView from './views/OverviewView.vue'

declare module 'vue-router' {
  interface RouteMeta {
    /** Pages anyone may see (the login page). */
    public?: boolean
    /** The least role a page needs (default viewer). */
    role?: Role
  }
}

export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'overview', component: OverviewView, meta: { title: 'Overview' } },
  { path: '/services/:name', name: 'service', component: () => import('./views/ServiceView.vue'), meta: { title: 'Service' } },
  { path: '/services/:name/data', name: 'service-data', component: () => import('./views/DataView.vue'), meta: { title: 'Data quality' } },
  { path: '/alerts', name: 'alerts', component: () => import('./views/AlertsView.vue'), meta: { title: 'Alerts' } },
  { path: '/system', name: 'system', component: () => import('./views/SystemView.vue'), meta: { title: 'System' } },
  { path: '/config/services', name: 'services-config', component: () => import('./views/ServicesConfigView.vue'), meta: { title: 'Monitored services' } },
  { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { title: 'Sign in', public: true } },
  { path: '/admin', name: 'admin', component: () => import('./views/AdminView.vue'), meta: { title: 'Users and tokens', role: 'admin' } },
  { path: '/audit', name: 'audit', component: () => import('./views/AuditView.vue'), meta: { title: 'Audit log', role: 'admin' } },
  { path: '/:pathMatch(.*)*', name: 'not-found', component: () => import('./views/NotFoundView.vue'), meta: { title: 'Not found' } },
]

export const router = createRouter({ history: createWebHistory(), routes })

/** Where a navigation may go: the login page when signed out, the overview when the
 * role is too low (the API refuses anyway; this only spares a page of errors). */
export async function authorize(to: Pick<RouteLocationNormalized, 'meta' | 'fullPath'>): Promise<true | RouteLocationRaw> {
  if (to.meta.public) return true
  try {
    await loadAuthState()
  } catch {
    return true // the API is unreachable: let the page show that
  }
  const state = session.state
  if (state?.enabled && !state.user) return { name: 'login', query: { next: to.fullPath } }
  if (!can(to.meta.role ?? 'viewer')) return { name: 'overview' }
  return true
}

router.beforeEach(authorize)

router.afterEach((to) => {
  const t = typeof to.meta.title === 'string' ? to.meta.title : ''
  const name = to.name === 'service' ? String(to.params.name) : t
  document.title = name ? `${name} · ModelMonitor` : 'ModelMonitor'
})
