import { flushPromises } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { effectScope } from 'vue'
import { useAlerts, useRequests } from './useApi'

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

  it('treats a 503 (alerting not running) the same way', async () => {
    vi.stubGlobal('fetch', vi.fn().mockResolvedValue(new Response('{"detail":"alerting is not running in this process"}', { status: 503 })))
    const scope = effectScope()
    const alerts = scope.run(() => useAlerts(0))!
    await flushPromises()
    expect(alerts.configured.value).toBe(false)
    expect(alerts.error.value).toBeNull()
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

describe('useRequests', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('follows next_cursor to append older pages', async () => {
    const rec = (id: string) => ({ id, start: 1, service: 's', method: 'GET', route: '/', path: '/', status: 200 })
    const fetch = vi.fn(async (url: string) =>
      url.includes('cursor=c1')
        ? Response.json({ requests: [rec('3')], next_cursor: null })
        : Response.json({ requests: [rec('1'), rec('2')], next_cursor: 'c1' }),
    )
    vi.stubGlobal('fetch', fetch)
    const scope = effectScope()
    const r = scope.run(() => useRequests({ service: 's', start: '-1h', end: 'now' }, null))!
    await flushPromises()
    expect(r.requests.value.map((x) => x.id)).toEqual(['1', '2'])
    expect(r.nextCursor.value).toBe('c1')
    await r.loadOlder()
    expect(r.requests.value.map((x) => x.id)).toEqual(['1', '2', '3'])
    expect(r.nextCursor.value).toBeNull()
    expect(fetch.mock.calls[1]![0]).toContain('start=-1h')
    scope.stop()
  })
})
