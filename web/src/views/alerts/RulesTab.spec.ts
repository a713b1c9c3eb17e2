import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import { setAuthState, type Role } from '../../lib/session'
import RulesTab from './RulesTab.vue'

const rule = { id: 'r1', name: 'Slow', kind: 'threshold', service: 'svc', route: null, metric: 'latency_p99', comparator: '>', threshold: 1, window: '1m', for: 0, keep_firing_for: 0, repeat_interval: 0, min_requests: 10, severity: 'warning', channels: [], labels: {}, enabled: true, created_at: 1, updated_at: 1, source: 'api' }

async function mountAs(role: Role) {
  setAuthState({ enabled: true, methods: ['password'], oidc_label: null, user: { name: 'u', role, method: 'session' }, csrf_token: 'c' })
  vi.stubGlobal('fetch', vi.fn(async (url: string) => (url.includes('/rules') ? Response.json({ rules: [rule] }) : Response.json({ services: [], channels: [] }))))
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/', component: RulesTab }] })
  await router.push('/')
  const w = mount(RulesTab, { global: { plugins: [router] } })
  await flushPromises()
  return w
}

describe('RulesTab roles', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows a viewer the rules but no edit controls', async () => {
    const w = await mountAs('viewer')
    expect(w.text()).toContain('Slow')
    for (const id of ['new-rule', 'edit-rule', 'delete-rule']) expect(w.find(`[data-testid=${id}]`).exists()).toBe(false)
  })

  it('gives an editor the edit controls', async () => {
    const w = await mountAs('editor')
    for (const id of ['new-rule', 'edit-rule', 'delete-rule']) expect(w.find(`[data-testid=${id}]`).exists()).toBe(true)
  })
})
