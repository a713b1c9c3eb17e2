import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import OverviewView from './views/OverviewView.vue'

export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'overview', component: OverviewView, meta: { title: 'Overview' } },
  { path: '/services/:name', name: 'service', component: () => import('./views/ServiceView.vue'), meta: { title: 'Service' } },
  { path: '/services/:name/data', name: 'service-data', component: () => import('./views/DataView.vue'), meta: { title: 'Data quality' } },
  { path: '/alerts', name: 'alerts', component: () => import('./views/AlertsView.vue'), meta: { title: 'Alerts' } },
  { path: '/system', name: 'system', component: () => import('./views/SystemView.vue'), meta: { title: 'System' } },
  { path: '/:pathMatch(.*)*', name: 'not-found', component: () => import('./views/NotFoundView.vue'), meta: { title: 'Not found' } },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.afterEach((to) => {
  const t = typeof to.meta.title === 'string' ? to.meta.title : ''
  const name = to.name === 'service' ? String(to.params.name) : t
  document.title = name ? `${name} · ModelMonitor` : 'ModelMonitor'
})
