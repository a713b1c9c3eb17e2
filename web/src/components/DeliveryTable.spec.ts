import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { Delivery } from '../api/types'
import DeliveryTable from './DeliveryTable.vue'

const base: Delivery = {
  id: 1, notification_id: 'n1', channel: 'ops-hook', channel_type: 'webhook', service: 'iris', status: 'delivered', created_at: 1_700_000_000,
  attempts: 1, latency_ms: 42.5, http_status: 200, error: '', alert_ids: ['r1:iris'], finished_at: 1_700_000_001, claimed_until: 0, notification: null,
}

describe('DeliveryTable', () => {
  it('shows time, channel, alert, attempts, status, latency with units and the error', () => {
    const w = mount(DeliveryTable, {
      props: { deliveries: [base, { ...base, id: 2, status: 'failed', attempts: 5, latency_ms: 10_500, http_status: 503, error: 'HTTP 503 Service Unavailable' }] },
    })
    const rows = w.findAll('[data-testid=delivery-row]')
    expect(rows).toHaveLength(2)
    expect(rows[0]!.text()).toContain('ops-hook')
    expect(rows[0]!.text()).toContain('(webhook)')
    expect(rows[0]!.text()).toContain('r1:iris')
    expect(rows[0]!.text()).toContain('42.5 ms')
    expect(rows[0]!.text()).toContain('1×')
    expect(rows[1]!.attributes('data-status')).toBe('failed')
    expect(rows[1]!.text()).toContain('10.5 s')
    expect(rows[1]!.text()).toContain('5×')
    expect(rows[1]!.text()).toContain('HTTP 503 Service Unavailable')
  })

  it('names the alerts after their rules when known', () => {
    const w = mount(DeliveryTable, { props: { deliveries: [base], ruleNames: { r1: 'iris errors' } } })
    expect(w.get('[data-testid=delivery-row]').text()).toContain('iris errors (iris)')
  })

  it('shows a dash for an unknown latency', () => {
    const w = mount(DeliveryTable, { props: { deliveries: [{ ...base, status: 'pending', latency_ms: null, http_status: null }] } })
    expect(w.get('[data-testid=delivery-row]').text()).toContain('—')
  })
})
