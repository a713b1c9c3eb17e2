import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import StatusBadge from './StatusBadge.vue'

describe('StatusBadge', () => {
  it.each([
    ['healthy', 'Healthy', 'emerald'],
    ['degraded', 'Degraded', 'amber'],
    ['down', 'Down', 'rose'],
    ['idle', 'Idle', 'slate'],
    ['firing', 'Firing', 'rose'],
    ['ok', 'OK', 'emerald'],
  ])('renders %s as "%s" in %s', (status, text, color) => {
    const w = mount(StatusBadge, { props: { status } })
    expect(w.text()).toBe(text)
    expect(w.attributes('data-status')).toBe(status)
    expect(w.classes().join(' ')).toContain(color)
  })

  it('capitalizes unknown statuses and accepts a custom label', () => {
    expect(mount(StatusBadge, { props: { status: 'weird' } }).text()).toBe('Weird')
    expect(mount(StatusBadge, { props: { status: 'ok', label: 'connected' } }).text()).toBe('connected')
  })
})
