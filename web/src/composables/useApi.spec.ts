import { flushPromises } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { effectScope } from 'vue'
import { useAlerts } from './useApi'

describe('useAlerts', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('treats a 404 as "alerting not configured" without an error', async () => {
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(new Response('{"detail":"Not Found"}', { status: 404 })))
    const scope = effectScope()
    const alerts = scope.run(() => useAlerts(0))!
    await flushPromises()
    expect(alerts.configured.value).toBe(false)
    expect(alerts.error.value).toBeNull()
    expect(alerts.firing.value).toEqual([])
    scope.stop()
  })

  it('lists firing alerts when configured', async () => {
    const body = {
      alerts: [
        { id: '1', state: 'firing', rule_name: 'r' },
        { id: '2', state: 'resolved', rule_name: 'r' },
      ],
    }
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(new Response(JSON.stringify(body), { status: 200 })))
    const scope = effectScope()
    const alerts = scope.run(() => useAlerts(0))!
    await flushPromises()
    expect(alerts.configured.value).toBe(true)
    expect(alerts.firing.value.map((a) => a.id)).toEqual(['1'])
    scope.stop()
  })
})
