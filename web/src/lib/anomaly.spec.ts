import { describe, expect, it } from 'vitest'
import type { AnomalySeries } from '../api/types'
import type { LivePoint } from '../composables/useLive'
import { bandFromHistory, bandFromLive, EMPTY_BAND, explainText } from './anomaly'

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
      newNormal: [],
      explain: {},
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

  it('keeps the events: new-normal markers and why each point is marked', () => {
    const series: AnomalySeries = {
      service: 'iris',
      metric: 'latency_p95',
      unit: 'seconds',
      step_seconds: 0,
      points: [
        [20, 0.412, 0.99, 0.14, 0.12, 0.16, true],
        [30, 0.41, 0, 0.41, 0.3, 0.5, false],
      ],
      events: [
        { at: 20, kind: 'anomaly', member: 'novelty', value: 0.412, score: 0.99, expected: 0.14, lower: 0.12, upper: 0.16 },
        { at: 30, kind: 'new_normal', member: '', value: 0.41, score: 0, expected: 0.41, lower: 0.3, upper: 0.5 },
      ],
    }
    const band = bandFromHistory(series, 1000)
    expect(band.newNormal).toEqual([[30, 410]])
    expect(band.explain[20]).toEqual({ member: 'novelty', lower: 120, upper: 160 })
    expect(explainText(band.explain[20], (v) => `${v} ms`)).toBe('fired by novelty, expected 120 ms–160 ms')

    const base = { rps: 1, requests: 10, errorRate: 0, p50: null, p95: null, p99: null, statusClasses: {} }
    const live: LivePoint[] = [
      { ...base, t: 1, anomalies: { latency_p95: { value: 0.4, score: 0.9, expected: 0.14, lower: 0.12, upper: 0.16, at: 10, anomalous: true, member: 'baseline' } } },
      { ...base, t: 2, anomalies: { latency_p95: { value: 0.4, score: 0, expected: 0.4, lower: 0.3, upper: 0.5, at: 20, anomalous: false, event: 'new_normal' } } },
    ]
    const fromLive = bandFromLive(live, 'latency_p95', 1000)
    expect(fromLive.newNormal).toEqual([[20, 400]])
    expect(fromLive.explain[10]?.member).toBe('baseline')
  })
})
