import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { LanguageStats } from '../api/types'
import LlmPanel from './LlmPanel.vue'

const stats: LanguageStats = {
  prompt_tokens: 6000,
  completion_tokens: 3000,
  tokens_estimated: 2,
  streamed: 40,
  cost_usd: 0.12,
  ttft_p50_seconds: 0.18,
  ttft_p95_seconds: 0.42,
  finish_reasons: { stop: 30, length: 10 },
  tokens_per_second: 61.5,
  prompt_tokens_per_second: 100,
  completion_tokens_per_second: 50,
  cost_per_hour: 7.2,
  finish_reason_length_rate: 0.25,
}

describe('LlmPanel', () => {
  it('is hidden for a service without LLM traffic', () => {
    const w = mount(LlmPanel, { props: { stats: null, window: '1 min' } })
    expect(w.find('[data-testid=llm-panel]').exists()).toBe(false)
  })

  it('shows token rates, TTFT, speed, cost per hour and finish reasons', () => {
    const w = mount(LlmPanel, { props: { stats, window: '1 min' } })
    const text = w.get('[data-testid=llm-panel]').text()
    for (const expected of ['100', '50.0', '180 ms', '420 ms', '61.5', '$7.20']) expect(text).toContain(expected)
    const reasons = w.get('[data-testid=finish-reasons]')
    expect(reasons.get('[data-reason=stop]').text()).toContain('75')
    expect(reasons.get('[data-reason=length]').text()).toContain('25')
    expect(reasons.text()).toContain('2 requests with estimated tokens')
  })
})
