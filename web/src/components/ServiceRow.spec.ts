import { mount, RouterLinkStub } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { ServiceLive } from '../api/types'
import ServiceRow from './ServiceRow.vue'

const live: ServiceLive = {
  service: 'embed',
  status: 'down',
  in_flight: 0,
  last_seen: 1,
  routes: [],
  windows: {
    '10s': {
      window_seconds: 10,
      requests: 10,
      errors: 6,
      rps: 1,
      error_rate: 0.6,
      status_classes: { '5xx': 6, '2xx': 4 },
      request_bytes: 0,
      response_bytes: 0,
      p50_seconds: 0.5,
      p90_seconds: 1,
      p95_seconds: 1.2,
      p99_seconds: 3,
      mean_seconds: 0.7,
      llm: null,
    },
  },
}

function mountRow(props: { name: string; live?: ServiceLive }) {
  const table = document.createElement('tbody')
  document.body.appendChild(table)
  return mount(ServiceRow, { props, attachTo: table, global: { stubs: { RouterLink: RouterLinkStub } } })
}

describe('ServiceRow', () => {
  it('shows status, throughput, percentiles and error rate with units', () => {
    const w = mountRow({ name: 'embed', live })
    expect(w.get('[data-testid=status-badge]').attributes('data-status')).toBe('down')
    expect(w.get('[data-testid=rps]').text()).toBe('1.00 req/s')
    expect(w.get('[data-testid=p50]').text()).toBe('500 ms')
    expect(w.get('[data-testid=p95]').text()).toBe('1200 ms')
    expect(w.get('[data-testid=p99]').text()).toBe('3000 ms')
    expect(w.get('[data-testid=error-rate]').text()).toBe('60 %')
    expect(w.get('[data-testid=error-rate]').classes().join(' ')).toContain('rose')
    w.unmount()
  })

  it('renders an idle service without data', () => {
    const w = mountRow({ name: 'new' })
    expect(w.get('[data-testid=status-badge]').attributes('data-status')).toBe('idle')
    expect(w.get('[data-testid=rps]').text()).toBe('—')
    w.unmount()
  })
})
