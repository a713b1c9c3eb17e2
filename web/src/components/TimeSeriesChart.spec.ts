import { mount } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'

// A fake Chart.js: records constructions, updates and destroys.
type ChartData = { datasets: { label: string; data: unknown[] }[] }
type ChartOptions = { scales: { x: { min?: number; max?: number } } }
interface FakeChartLike {
  data: ChartData
  options: ChartOptions
  update: ReturnType<typeof vi.fn>
  destroy: ReturnType<typeof vi.fn>
}
const { FakeChart, created } = vi.hoisted(() => {
  const created: FakeChartLike[] = []
  class FakeChart {
    static register = () => {}
    data: ChartData
    options: ChartOptions
    update = vi.fn()
    destroy = vi.fn()
    constructor(_ctx: unknown, cfg: { data: ChartData; options: ChartOptions }) {
      this.data = cfg.data
      this.options = cfg.options
      created.push(this)
    }
  }
  return { FakeChart, created }
})
vi.mock('chart.js', () => {
  const el = {}
  return {
    Chart: FakeChart,
    BarController: el,
    BarElement: el,
    Filler: el,
    Legend: el,
    LinearScale: el,
    LineController: el,
    LineElement: el,
    PointElement: el,
    Tooltip: el,
  }
})

import TimeSeriesChart from './TimeSeriesChart.vue'

describe('TimeSeriesChart', () => {
  beforeEach(() => {
    created.length = 0
    vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue({} as CanvasRenderingContext2D)
  })
  afterEach(() => vi.restoreAllMocks())

  it('creates the chart once and updates it in place on new data', async () => {
    const w = mount(TimeSeriesChart, {
      props: { label: 'rps', format: (v: number) => `${v} req/s`, series: [{ label: 'req/s', color: '#000', points: [[1, 2]] }], xMin: 0, xMax: 10 },
    })
    expect(created).toHaveLength(1)
    const chart = created[0]!
    expect(chart.data.datasets[0]!.data).toEqual([{ x: 1, y: 2 }])

    for (let t = 2; t < 6; t++) {
      await w.setProps({ series: [{ label: 'req/s', color: '#000', points: [[1, 2], [t, t]] }], xMin: t - 10, xMax: t })
    }
    expect(created).toHaveLength(1) // never re-created per tick
    expect(chart.update).toHaveBeenCalledTimes(4)
    expect(chart.update).toHaveBeenLastCalledWith('none')
    expect(chart.data.datasets[0]!.data).toEqual([{ x: 1, y: 2 }, { x: 5, y: 5 }])
    expect(chart.options.scales.x.max).toBe(5)

    // Series count changes are applied to the same instance.
    await w.setProps({
      series: [
        { label: 'p50', color: '#111', points: [[1, 1]] },
        { label: 'p99', color: '#222', points: [[1, 9]] },
      ],
    })
    expect(created).toHaveLength(1)
    expect(chart.data.datasets.map((d: { label: string }) => d.label)).toEqual(['p50', 'p99'])

    w.unmount()
    expect(chart.destroy).toHaveBeenCalledOnce()
  })

  it('draws the expected band as a filled area and marks anomalous points, updated in place', async () => {
    const series = [{ label: 'p95', color: '#f59e0b', points: [[10, 140], [20, 150], [30, 412]] as [number, number][] }]
    const band = { lower: [[10, 120], [20, 120], [30, 120]], upper: [[10, 160], [20, 160], [30, 160]], anomalies: [[30, 412]], newNormal: [], explain: {} } as never
    const w = mount(TimeSeriesChart, { props: { label: 'latency', format: (v: number) => `${v} ms`, series, band, bandColor: '#f59e0b' } })
    expect(created).toHaveLength(1)
    const chart = created[0]!
    const datasets = chart.data.datasets as unknown as Record<string, unknown>[]
    expect(datasets.map((d) => d.label)).toEqual(['p95', 'expected (low)', 'expected', 'anomaly', 'new normal'])
    expect(datasets[1]!.fill).toBe(false)
    expect(datasets[2]!.fill).toBe('-1') // the upper edge fills down to the lower one
    expect(datasets[2]!.data).toEqual([{ x: 10, y: 160 }, { x: 20, y: 160 }, { x: 30, y: 160 }])
    expect(datasets[3]!.showLine).toBe(false)
    expect(datasets[3]!.data).toEqual([{ x: 30, y: 412 }])

    // A new tick: same chart, same dataset objects, new data.
    const upper = datasets[2]
    await w.setProps({
      series: [{ label: 'p95', color: '#f59e0b', points: [[20, 150], [30, 412], [40, 420]] }],
      band: { lower: [[20, 120], [30, 120], [40, 120]], upper: [[20, 160], [30, 160], [40, 160]], anomalies: [[30, 412], [40, 420]], newNormal: [], explain: {} } as never,
    })
    expect(created).toHaveLength(1)
    expect(chart.update).toHaveBeenLastCalledWith('none')
    expect(chart.data.datasets[2]).toBe(upper)
    expect(chart.data.datasets[3]!.data).toEqual([{ x: 30, y: 412 }, { x: 40, y: 420 }])

    // No band (anomaly detection not running): only the series remain.
    await w.setProps({ band: null })
    expect(chart.data.datasets.map((d: { label: string }) => d.label)).toEqual(['p95'])
    w.unmount()
  })

  it('marks a new normal and says which member fired and the band, in the tooltip', () => {
    const series = [{ label: 'p95', color: '#f59e0b', points: [[10, 140], [20, 412], [30, 410]] as [number, number][] }]
    const band = {
      lower: [[10, 120], [20, 120], [30, 300]],
      upper: [[10, 160], [20, 160], [30, 500]],
      anomalies: [[20, 412]],
      newNormal: [[30, 410]],
      explain: { 20: { member: 'novelty', lower: 120, upper: 160 }, 30: { member: '', lower: 300, upper: 500 } },
    } as never
    mount(TimeSeriesChart, { props: { label: 'latency', format: (v: number) => `${v} ms`, series, band } })
    const chart = created[0]!
    const datasets = chart.data.datasets as unknown as Record<string, unknown>[]
    expect(datasets[4]!.label).toBe('new normal')
    expect(datasets[4]!.data).toEqual([{ x: 30, y: 410 }])
    type Label = (item: unknown) => string
    const options = chart.options as unknown as { plugins: { tooltip: { callbacks: { label: Label } } } }
    const label = options.plugins.tooltip.callbacks.label
    expect(label({ dataset: { label: 'anomaly' }, parsed: { x: 20, y: 412 } })).toBe(
      'anomaly: 412 ms (fired by novelty, expected 120 ms–160 ms)',
    )
    expect(label({ dataset: { label: 'new normal' }, parsed: { x: 30, y: 410 } })).toBe(
      'new normal: 410 ms (expected 300 ms–500 ms)',
    )
    expect(label({ dataset: { label: 'p95' }, parsed: { x: 20, y: 412 } })).toBe('p95: 412 ms')
  })
})
