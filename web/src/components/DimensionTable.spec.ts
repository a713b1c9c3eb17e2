import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { DimensionSummary } from '../api/types'
import DimensionTable from './DimensionTable.vue'

function row(name: string, requests: number, cost: number, p95: number | null): DimensionSummary {
  return {
    name,
    requests,
    errors: requests > 50 ? 3 : 0,
    error_rate: requests > 50 ? 3 / requests : 0,
    p50_seconds: p95,
    p95_seconds: p95,
    ttft_p95_seconds: 0.2,
    prompt_tokens: requests * 10,
    completion_tokens: requests * 5,
    tokens_estimated: 0,
    tokens_per_second: 40,
    cost_usd: cost,
    finish_reasons: { stop: requests },
  }
}

const rows = [row('gpt-4o-mini', 120, 0.5, 0.8), row('llama-3.1-8b-instruct', 40, 0, 2.5), row('mistral-small-latest', 80, 1.25, 1.1)]
const names = (w: ReturnType<typeof mount>) => w.findAll('[data-testid=dimension-row] td:first-child').map((c) => c.text())

describe('DimensionTable', () => {
  it('sorts by requests first, then by any column, both ways', async () => {
    const w = mount(DimensionTable, { props: { title: 'Models', rows } })
    expect(names(w)).toEqual(['gpt-4o-mini', 'mistral-small-latest', 'llama-3.1-8b-instruct'])
    await w.get('[data-sort=cost_usd]').trigger('click')
    expect(names(w)).toEqual(['mistral-small-latest', 'gpt-4o-mini', 'llama-3.1-8b-instruct'])
    await w.get('[data-sort=cost_usd]').trigger('click')
    expect(names(w)).toEqual(['llama-3.1-8b-instruct', 'gpt-4o-mini', 'mistral-small-latest'])
    await w.get('[data-sort=p95_seconds]').trigger('click')
    expect(names(w)[0]).toBe('llama-3.1-8b-instruct')
    await w.get('[data-sort=name]').trigger('click')
    expect(names(w)).toEqual(['gpt-4o-mini', 'llama-3.1-8b-instruct', 'mistral-small-latest'])
  })

  it('shows cost and tokens, emits the clicked row and shows folded requests', async () => {
    const w = mount(DimensionTable, { props: { title: 'Models', rows, folded: 17, selected: 'gpt-4o-mini' } })
    const first = w.findAll('[data-testid=dimension-row]')[0]!
    expect(first.text()).toContain('$0.5000')
    expect(first.text()).toContain('1,800')
    expect(first.classes()).toContain('bg-sky-50')
    await first.trigger('click')
    expect(w.emitted('select')).toEqual([['gpt-4o-mini']])
    expect(w.get('[data-testid=folded]').text()).toContain('17')
  })
})
