import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import { rankFeatures, type FeatureDrift } from '../../api/quality'
import FeatureDriftTable from './FeatureDriftTable.vue'

const f = (name: string, drifted: boolean, js: number, extra: Partial<FeatureDrift> = {}): FeatureDrift => ({
  name,
  kind: 'numerical',
  method: 'wasserstein',
  score: js * 2,
  drifted,
  exact: true,
  metrics: {
    jensenshannon: { value: js, error: 0, threshold: 0.1, drifted: js >= 0.1 },
    psi: { value: js * 3, error: 0.002, threshold: 0.1, drifted: false },
  },
  reference_count: 100,
  current_count: 80,
  missing_rate: 0.05,
  type_mismatch_rate: 0,
  out_of_range: 2,
  bins: ['0..1', '1..2'],
  reference_share: [0.5, 0.5],
  current_share: [0.2, 0.8],
  ...extra,
})

describe('rankFeatures', () => {
  it('puts drifting features first, then by Jensen-Shannon distance', () => {
    const ranked = rankFeatures([f('a', false, 0.05), f('b', true, 0.2), f('c', false, 0.09), f('d', true, 0.4)])
    expect(ranked.map((x) => x.name)).toEqual(['d', 'b', 'c', 'a'])
  })
})

describe('FeatureDriftTable', () => {
  it('shows verdicts, metrics with their sketch error, and quality counters', () => {
    const w = mount(FeatureDriftTable, { props: { title: 'Features', features: [f('age', false, 0.01), f('income', true, 0.3)] } })
    const rows = w.findAll('tbody tr')
    expect(rows.map((r) => r.attributes('data-feature'))).toEqual(['income', 'age'])
    expect(rows[0]!.find('[data-testid=verdict]').text()).toBe('drift')
    expect(rows[1]!.find('[data-testid=verdict]').text()).toBe('ok')
    expect(rows[0]!.text()).toContain('0.900 ±0.002')
    expect(rows[0]!.text()).toContain('5.0 %')
  })

  it('opens reference-versus-current bars for a clicked feature', async () => {
    const w = mount(FeatureDriftTable, { props: { title: 'Features', features: [f('age', true, 0.3)] } })
    expect(w.find('[data-testid=drift-bars]').exists()).toBe(false)
    await w.find('tbody tr').trigger('click')
    const bars = w.find('[data-testid=drift-bars]')
    expect(bars.findAll('[data-testid=bin]').map((b) => b.text())).toEqual(['0..1', '1..2'])
    const widths = bars.findAll('[data-testid=cur-bar]').map((b) => b.attributes('style'))
    expect(widths).toEqual(['width: 25%;', 'width: 100%;'])
  })

  it('says so when there is nothing to compare', () => {
    expect(mount(FeatureDriftTable, { props: { title: 'Predictions', features: [] } }).text()).toContain('Nothing to compare yet')
  })
})
