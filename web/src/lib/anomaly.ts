import type { AnomalyMetric, AnomalySeries, Point } from '../api/types'
import type { LivePoint } from '../composables/useLive'

/** An expected band and the anomalous points of one metric, in the chart's units. */
export interface Band {
  lower: Point[]
  upper: Point[]
  anomalies: Point[]
}

/** Labels of a chart's band datasets (drawn after the series, so the upper edge fills
 * down to the lower one). */
export const BAND_LABELS = { lower: 'expected (low)', upper: 'expected', anomalies: 'anomaly' } as const

export const EMPTY_BAND: Band = { lower: [], upper: [], anomalies: [] }

/** The band of a historical anomaly series, values multiplied by `k` (e.g. 1000 for ms). */
export function bandFromHistory(series: AnomalySeries | undefined | null, k = 1): Band {
  if (!series) return EMPTY_BAND
  const lower: Point[] = []
  const upper: Point[] = []
  const anomalies: Point[] = []
  for (const [t, value, , , lo, hi, anomalous] of series.points) {
    lower.push([t, Math.max(lo, 0) * k])
    upper.push([t, hi * k])
    if (anomalous) anomalies.push([t, value * k])
  }
  return { lower, upper, anomalies }
}

/** The band of a metric over the live history (one point per snapshot; anomalous
 * points once per scored step). */
export function bandFromLive(points: LivePoint[], metric: AnomalyMetric, k = 1): Band {
  const lower: Point[] = []
  const upper: Point[] = []
  const anomalies: Point[] = []
  let lastAt = -Infinity
  for (const p of points) {
    const a = p.anomalies?.[metric]
    if (!a) {
      lower.push([p.t, null])
      upper.push([p.t, null])
      continue
    }
    lower.push([p.t, Math.max(a.lower, 0) * k])
    upper.push([p.t, a.upper * k])
    if (a.anomalous && a.at !== lastAt) anomalies.push([a.at, a.value * k])
    lastAt = a.at
  }
  if (lower.every((p) => p[1] === null)) return EMPTY_BAND
  return { lower, upper, anomalies }
}
