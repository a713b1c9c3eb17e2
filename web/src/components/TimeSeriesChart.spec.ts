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
})
