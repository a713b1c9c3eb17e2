import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { TimeRange } from '../lib/timeRange'
import { toLocalInput } from '../lib/timeRange'
import TimeRangePicker from './TimeRangePicker.vue'

const now = () => 1_800_000_000

describe('TimeRangePicker', () => {
  it('offers live, 15 m, 1 h, 24 h, 7 d and custom, with the current one pressed', () => {
    const w = mount(TimeRangePicker, { props: { modelValue: { kind: 'live' } as TimeRange, now } })
    const buttons = w.findAll('button[data-range]')
    expect(buttons.map((b) => b.attributes('data-range'))).toEqual(['live', '15m', '1h', '24h', '7d', 'custom'])
    expect(w.get('[data-range="live"]').attributes('aria-pressed')).toBe('true')
    expect(w.get('[data-range="1h"]').attributes('aria-pressed')).toBe('false')
  })

  it('emits relative and live ranges', async () => {
    const w = mount(TimeRangePicker, { props: { modelValue: { kind: 'live' } as TimeRange, now } })
    await w.get('[data-range="1h"]').trigger('click')
    await w.get('[data-range="7d"]').trigger('click')
    await w.get('[data-range="live"]').trigger('click')
    expect(w.emitted('update:modelValue')).toEqual([[{ kind: 'relative', key: '1h' }], [{ kind: 'relative', key: '7d' }], [{ kind: 'live' }]])
  })

  it('opens a custom form, validates it and emits a custom range', async () => {
    const w = mount(TimeRangePicker, { props: { modelValue: { kind: 'relative', key: '15m' } as TimeRange, now } })
    expect(w.find('[data-testid=custom-range]').exists()).toBe(false)
    await w.get('[data-range="custom"]').trigger('click')
    const form = w.get('[data-testid=custom-range]')
    // Defaults to the last hour.
    expect((form.get('input[name=end]').element as HTMLInputElement).value).toBe(toLocalInput(now()))
    await form.get('input[name=start]').setValue(toLocalInput(now()))
    await form.get('input[name=end]').setValue(toLocalInput(now() - 3600))
    await form.trigger('submit')
    expect(w.text()).toContain('The end must be after the start')
    expect(w.emitted('update:modelValue')).toBeUndefined()
    await form.get('input[name=start]').setValue(toLocalInput(now() - 7200))
    await form.get('input[name=end]').setValue(toLocalInput(now()))
    await form.trigger('submit')
    const [[range]] = w.emitted('update:modelValue') as [[TimeRange]]
    expect(range.kind).toBe('custom')
    if (range.kind === 'custom') expect(range.end - range.start).toBe(7200)
  })
})
