import { describe, expect, it } from 'vitest'
import type { AnomalySeries } from '../api/types'
import type { LivePoint } from '../composables/useLive'
import { bandFromHistory, bandFromLive, EMPTY_BAND } from './anomaly'

describe('anomaly bands', () => {
  it('turns a historical anomaly series into band edges and anomalous points', () => {
    const series: AnomalySeries = {
      service: 'iris',
      metric: 'latency_p95',
      unit: 'seconds',
      step_seconds: 0,
      points: [
        [10, 0.14, 0, 0.14, 0.12, 0.16, false],
        [20, 0.412, 0.99, 0.14, -0.01, 0.16, true],
      ],
    }
    expect(bandFromHistory(series, 1000)).toEqual({
      lower: [[10, 120], [20, 0]],
      upper: [[10, 160], [20, 160]],
      anomalies: [[20, 412]],
    })
    expect(bandFromHistory(undefined)).toBe(EMPTY_BAND)
  })

  it('follows the live snapshots and marks each anomalous step once', () => {
    const base = { rps: 1, requests: 10, errorRate: 0, p50: null, p95: null, p99: null, statusClasses: {} }
    const a = (at: number, value: number, anomalous: boolean) => ({
      latency_p95: { value, score: anomalous ? 0.99 : 0, expected: 0.14, lower: 0.12, upper: 0.16, at, anomalous },
    })
    const points: LivePoint[] = [
      { ...base, t: 1 },
      { ...base, t: 2, anomalies: a(0, 0.15, false) },
      { ...base, t: 3, anomalies: a(10, 0.4, true) },
      { ...base, t: 4, anomalies: a(10, 0.4, true) },
      { ...base, t: 5, anomalies: a(20, 0.5, true) },
    ]
    const band = bandFromLive(points, 'latency_p95', 1000)
    expect(band.lower[0]).toEqual([1, null])
    expect(band.upper[4]).toEqual([5, 160])
    expect(band.anomalies).toEqual([[10, 400], [20, 500]])
    expect(bandFromLive(points, 'error_rate')).toBe(EMPTY_BAND)
  })
})
