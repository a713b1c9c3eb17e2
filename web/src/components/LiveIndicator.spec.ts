import { mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import LiveIndicator from './LiveIndicator.vue'

describe('LiveIndicator', () => {
  afterEach(() => vi.useRealTimers())

  it('shows Live when connected, without a retry button', () => {
    const w = mount(LiveIndicator, { props: { state: 'live' } })
    expect(w.text()).toContain('Live')
    expect(w.attributes('data-state')).toBe('live')
    expect(w.find('button').exists()).toBe(false)
  })

  it('shows Connecting… before the first snapshot', () => {
    const w = mount(LiveIndicator, { props: { state: 'connecting' } })
    expect(w.text()).toContain('Connecting')
  })

  it('counts down to the next reconnect attempt and offers a retry', async () => {
    vi.useFakeTimers()
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'))
    const w = mount(LiveIndicator, { props: { state: 'reconnecting', nextRetryAt: Date.now() + 4000, attempts: 3 } })
    expect(w.text()).toContain('Reconnecting in 4 s')
    vi.advanceTimersByTime(2000)
    await w.vm.$nextTick()
    expect(w.text()).toContain('Reconnecting in 2 s')
    await w.find('button').trigger('click')
    expect(w.emitted('retry')).toHaveLength(1)
  })

  it('shows Offline when stopped', () => {
    const w = mount(LiveIndicator, { props: { state: 'offline' } })
    expect(w.text()).toContain('Offline')
    expect(w.attributes('data-state')).toBe('offline')
  })
})
