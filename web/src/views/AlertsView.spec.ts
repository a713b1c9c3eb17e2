import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import AlertsView from './AlertsView.vue'
import { ALERT_TABS } from './alerts/tabs'

async function mountAt(path: string) {
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/alerts', component: AlertsView }] })
  await router.push(path)
  const w = mount(AlertsView, { global: { plugins: [router] } })
  await flushPromises()
  return { w, router }
}

describe('AlertsView', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('has tabs for alerts, rules, silences and the delivery log', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"detail":"Not Found"}', { status: 404 })))
    const { w } = await mountAt('/alerts')
    expect(w.findAll('[role=tab]').map((t) => t.text())).toEqual(ALERT_TABS.map((t) => t.label))
    expect(w.text()).toContain('Alerting not configured yet')
    w.unmount()
  })

  it('switches tabs through the URL and shows the placeholders', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('{"detail":"Not Found"}', { status: 404 })))
    const { w, router } = await mountAt('/alerts')
    await w.get('[data-tab=rules]').trigger('click')
    await flushPromises()
    expect(router.currentRoute.value.query.tab).toBe('rules')
    expect(w.text()).toContain('Alert rules: alerting not configured yet')
    w.unmount()
  })

  it('lists firing and recent alerts when alerting is configured', async () => {
    const alerts = [
      { id: '1', rule_id: 'r', rule_name: 'High error rate', service: 'svc', state: 'firing', severity: 'critical', value: 0.2, threshold: 0.05, started_at: 1, resolved_at: null, labels: {}, summary: 'errors 20 %' },
      { id: '2', rule_id: 'r', rule_name: 'Slow', service: 'svc', state: 'resolved', severity: 'warning', value: 1, threshold: 0.5, started_at: 1, resolved_at: 2, labels: {}, summary: 'p99 1 s' },
    ]
    vi.stubGlobal('fetch', vi.fn(async () => Response.json({ alerts })))
    const { w } = await mountAt('/alerts')
    expect(w.get('[data-testid=alerts-firing]').text()).toContain('High error rate')
    expect(w.get('[data-testid=alerts-recent]').text()).toContain('Slow')
    w.unmount()
  })
})
