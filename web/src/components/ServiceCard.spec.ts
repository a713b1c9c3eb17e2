import { mount, RouterLinkStub } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { Point, ServiceLive, WindowStats } from '../api/types'
import ServiceCard from './ServiceCard.vue'

function win(seconds: number, over: Partial<WindowStats> = {}): WindowStats {
  return {
    window_seconds: seconds,
    requests: 0,
    errors: 0,
    rps: 0,
    error_rate: 0,
    status_classes: {},
    request_bytes: 0,
    response_bytes: 0,
    p50_seconds: null,
    p90_seconds: null,
    p95_seconds: null,
    p99_seconds: null,
    mean_seconds: null,
    llm: null,
    ...over,
  }
}

const live: ServiceLive = {
  service: 'chat-api',
  status: 'degraded',
  in_flight: 3,
  last_seen: 1000,
  windows: {
    '1s': win(1),
    '10s': win(10, { requests: 200, errors: 14, rps: 20, error_rate: 0.07, p50_seconds: 0.0123, p95_seconds: 0.25, p99_seconds: 1.5 }),
    '1m': win(60),
    '5m': win(300, { requests: 5432 }),
  },
  routes: [],
}

const mountCard = (props: { name: string; live?: ServiceLive; spark?: Point[]; now?: number }) => mount(ServiceCard, { props, global: { stubs: { RouterLink: RouterLinkStub } } })

describe('ServiceCard', () => {
  it('shows the 10-second window with units and links to the service page', () => {
    const w = mountCard({ name: 'chat-api', live, spark: [[0, 1], [60, 2]], now: 1002 })
    expect(w.get('[data-testid=rps]').text()).toBe('20.0 req/s')
    expect(w.get('[data-testid=p50]').text()).toBe('12.3 ms')
    expect(w.get('[data-testid=p95]').text()).toBe('250 ms')
    expect(w.get('[data-testid=p99]').text()).toBe('1500 ms')
    expect(w.get('[data-testid=error-rate]').text()).toBe('7.0 %')
    expect(w.get('[data-testid=error-rate]').classes().join(' ')).toContain('amber')
    expect(w.get('[data-testid=requests-5m]').text()).toBe('5,432')
    expect(w.get('[data-testid=status-badge]').attributes('data-status')).toBe('degraded')
    expect(w.text()).toContain('3 in flight')
    expect(w.text()).toContain('seen 2 s ago')
    expect(w.getComponent(RouterLinkStub).props('to')).toEqual({ name: 'service', params: { name: 'chat-api' } })
    expect(w.find('[data-testid=sparkline] path').exists()).toBe(true)
  })

  it('renders a service without live data as idle with dashes', () => {
    const w = mountCard({ name: 'quiet' })
    expect(w.get('[data-testid=status-badge]').attributes('data-status')).toBe('idle')
    expect(w.get('[data-testid=rps]').text()).toBe('—')
    expect(w.get('[data-testid=p99]').text()).toBe('—')
    expect(w.text()).toContain('no traffic')
    expect(w.find('[data-testid=sparkline] path').exists()).toBe(false)
  })
})
