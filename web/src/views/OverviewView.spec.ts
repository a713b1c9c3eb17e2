import { flushPromises, mount, RouterLinkStub } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { LiveSnapshot, ServiceLive } from '../api/types'
import { LIVE_KEY, useLive } from '../composables/useLive'
import OverviewView from './OverviewView.vue'

function stubFetch(services: string[], opts: { servicesStatus?: number } = {}) {
  const fetch = vi.fn(async (url: string) => {
    if (url.startsWith('/api/v1/services')) {
      if (opts.servicesStatus) return new Response('{"detail":"boom"}', { status: opts.servicesStatus })
      return Response.json({ services: services.map((name) => ({ name, upstream: null, listen: '0.0.0.0:9090', path_prefix: null, first_seen: 1, last_seen: 2, requests_total: 3 })) })
    }
    if (url.startsWith('/api/v1/alerts')) return new Response('{"detail":"Not Found"}', { status: 404 })
    if (url.startsWith('/api/v1/metrics/historical')) return Response.json({ service: 's', route: null, start: 0, end: 1, step_seconds: 60, series: [{ metric: 'rps', unit: '1/s', points: [] }] })
    return new Response('{}', { status: 404 })
  })
  vi.stubGlobal('fetch', fetch)
  return fetch
}

function service(name: string, status: ServiceLive['status'], rps: number): ServiceLive {
  const w = (s: number) => ({
    window_seconds: s,
    requests: Math.round(rps * s),
    errors: 0,
    rps,
    error_rate: 0,
    status_classes: {},
    request_bytes: 0,
    response_bytes: 0,
    p50_seconds: 0.01,
    p90_seconds: 0.02,
    p95_seconds: 0.03,
    p99_seconds: 0.04,
    mean_seconds: 0.01,
    llm: null,
  })
  return { service: name, status, in_flight: 0, last_seen: 100, windows: { '1s': w(1), '10s': w(10), '1m': w(60), '5m': w(300) }, routes: [] }
}

function mountOverview(snapshot: LiveSnapshot | null) {
  const live = useLive({ autoStart: false })
  live.snapshot.value = snapshot
  return mount(OverviewView, { global: { provide: { [LIVE_KEY as symbol]: live }, stubs: { RouterLink: RouterLinkStub } } })
}

describe('OverviewView', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows the "no traffic yet" empty state with the proxy address', async () => {
    stubFetch([])
    const w = mountOverview({ at: 100, ingest_rate: 0, proxies: [], services: [] })
    await flushPromises()
    expect(w.get('[data-testid=empty-state]').text()).toContain('No traffic yet: send requests to :9090')
    w.unmount()
  })

  it('shows an error with a retry when the API is unreachable and no snapshot came', async () => {
    stubFetch([], { servicesStatus: 500 })
    const w = mountOverview(null)
    await flushPromises()
    expect(w.get('[data-testid=error-state]').text()).toContain('boom')
    w.unmount()
  })

  it('lists every service (live and registered), worst status first, and filters', async () => {
    stubFetch(['idle-one'])
    const w = mountOverview({ at: 100, ingest_rate: 5, proxies: [], services: [service('b-ok', 'healthy', 2), service('a-down', 'down', 1)] })
    await flushPromises()
    const cards = w.findAll('[data-testid=service-card]')
    expect(cards.map((c) => c.attributes('data-service'))).toEqual(['a-down', 'b-ok', 'idle-one'])
    expect(w.text()).toContain('3.00 req/s') // total throughput
    await w.get('input[type=search]').setValue('ok')
    expect(w.findAll('[data-testid=service-card]').map((c) => c.attributes('data-service'))).toEqual(['b-ok'])
    w.unmount()
  })

  it('switches to a compact table and remembers it', async () => {
    stubFetch([])
    const w = mountOverview({ at: 100, ingest_rate: 5, proxies: [], services: [service('a', 'healthy', 2), service('b', 'degraded', 1)] })
    await flushPromises()
    await w.get('[data-layout=table]').trigger('click')
    expect(w.findAll('[data-testid=service-row]').map((r) => r.attributes('data-service'))).toEqual(['b', 'a'])
    expect(localStorage.getItem('modelmonitor-overview-layout')).toBe('table')
    w.unmount()
    localStorage.clear()
  })

  it('renders 50 services', async () => {
    stubFetch([])
    const services = Array.from({ length: 50 }, (_, i) => service(`svc-${String(i).padStart(2, '0')}`, 'healthy', i))
    const w = mountOverview({ at: 100, ingest_rate: 5, proxies: [], services })
    await flushPromises()
    expect(w.findAll('[data-testid=service-card]')).toHaveLength(50)
    w.unmount()
  })
})
