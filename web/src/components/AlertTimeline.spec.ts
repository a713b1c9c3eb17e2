import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { AlertHistoryEntry } from '../api/types'
import { timelineRows } from '../lib/alertTimeline'
import AlertTimeline from './AlertTimeline.vue'

const NOW = 100_000
function h(at: number, previous: string, status: string, rule = 'r1', service = 'iris'): AlertHistoryEntry {
  return { id: at, at, rule_id: rule, rule_name: `rule ${rule}`, service, previous, status, severity: 'warning', value: 1, threshold: 0.5, silenced: false, labels: {} }
}

describe('timelineRows', () => {
  it('turns state changes into pending and firing stretches, open ones up to now', () => {
    const rows = timelineRows([h(NOW - 50, 'firing', 'resolved'), h(NOW - 100, 'pending', 'firing'), h(NOW - 200, 'inactive', 'pending'), h(NOW - 10, 'inactive', 'firing', 'r2')], NOW - 86400, NOW)
    expect(rows.map((r) => r.key)).toEqual(['r2:iris', 'r1:iris'])
    expect(rows[1]!.segments).toEqual([
      { state: 'pending', start: NOW - 200, end: NOW - 100, silenced: false },
      { state: 'firing', start: NOW - 100, end: NOW - 50, silenced: false },
    ])
    expect(rows[0]!.segments).toEqual([{ state: 'firing', start: NOW - 10, end: NOW, silenced: false }])
  })

  it('adds alerts firing since before the range (no change in it)', () => {
    const alert = { id: 'r9:iris', rule_id: 'r9', rule_name: 'old', service: 'iris', state: 'firing' as const, severity: 'info', value: 1, threshold: 0, started_at: NOW - 200_000, firing_since: NOW - 190_000, resolved_at: null, labels: {}, summary: '' }
    const rows = timelineRows([], NOW - 86400, NOW, [alert])
    expect(rows[0]!.segments).toEqual([{ state: 'firing', start: NOW - 86400, end: NOW, silenced: false }])
  })

  it('clips stretches that began before the range', () => {
    const rows = timelineRows([h(NOW - 90_000, 'inactive', 'firing')], NOW - 86400, NOW)
    expect(rows[0]!.segments[0]).toMatchObject({ start: NOW - 86400, end: NOW })
  })
})

describe('AlertTimeline', () => {
  it('draws one bar per alert with positioned segments', () => {
    const w = mount(AlertTimeline, { props: { history: [h(NOW - 43200, 'inactive', 'firing')], now: NOW } })
    const rows = w.findAll('[data-testid=timeline-row]')
    expect(rows).toHaveLength(1)
    expect(rows[0]!.attributes('data-state')).toBe('firing')
    const seg = w.get('[data-testid=timeline-segment]')
    expect(seg.attributes('data-state')).toBe('firing')
    expect(seg.attributes('data-left-pct')).toBe('50')
  })

  it('says when nothing happened', () => {
    const w = mount(AlertTimeline, { props: { history: [], now: NOW } })
    expect(w.text()).toContain('No alert changed state in the last 24 h')
  })
})
