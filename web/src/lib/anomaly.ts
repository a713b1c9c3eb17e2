import type { AnomalyMetric, AnomalySeries, Point } from '../api/types'
import type { LivePoint } from '../composables/useLive'

/** Why a point is marked: the member that fired and the band it was judged against. */
export interface Explain {
  member: string
  lower: number
  upper: number
}

/** An expected band, the anomalous points and the new-normal points of one metric, in
 * the chart's units; `explain` holds, by time, why an anomaly or new normal is marked. */
export interface Band {
  lower: Point[]
  upper: Point[]
  anomalies: Point[]
  newNormal: Point[]
  explain: Record<number, Explain>
}

/** Labels of a chart's band datasets (drawn after the series, so the upper edge fills
 * down to the lower one). */
export const BAND_LABELS = {
  lower: 'expected (low)',
  upper: 'expected',
  anomalies: 'anomaly',
  newNormal: 'new normal',
} as const

export const EMPTY_BAND: Band = { lower: [], upper: [], anomalies: [], newNormal: [], explain: {} }

/** The band of a historical anomaly series, values multiplied by `k` (e.g. 1000 for ms). */
export function bandFromHistory(series: AnomalySeries | undefined | null, k = 1): Band {
  if (!series) return EMPTY_BAND
  const lower: Point[] = []
  const upper: Point[] = []
  const anomalies: Point[] = []
  const newNormal: Point[] = []
  const explain: Record<number, Explain> = {}
  for (const [t, value, , , lo, hi, anomalous] of series.points) {
    lower.push([t, Math.max(lo, 0) * k])
    upper.push([t, hi * k])
    if (anomalous) anomalies.push([t, value * k])
  }
  for (const e of series.events ?? []) {
    if (e.kind === 'new_normal') newNormal.push([e.at, e.value * k])
    explain[e.at] = { member: e.member, lower: Math.max(e.lower, 0) * k, upper: e.upper * k }
  }
  return { lower, upper, anomalies, newNormal, explain }
}

/** The band of a metric over the live history (one point per snapshot; anomalous
 * points once per scored step). */
export function bandFromLive(points: LivePoint[], metric: AnomalyMetric, k = 1): Band {
  const lower: Point[] = []
  const upper: Point[] = []
  const anomalies: Point[] = []
  const newNormal: Point[] = []
  const explain: Record<number, Explain> = {}
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
    if (a.at !== lastAt) {
      if (a.anomalous) anomalies.push([a.at, a.value * k])
      if (a.event === 'new_normal') newNormal.push([a.at, a.value * k])
      if (a.member || a.event) explain[a.at] = { member: a.member ?? '', lower: Math.max(a.lower, 0) * k, upper: a.upper * k }
    }
    lastAt = a.at
  }
  if (lower.every((p) => p[1] === null)) return EMPTY_BAND
  return { lower, upper, anomalies, newNormal, explain }
}

/** Tooltip text for a marked point: `fired by novelty, expected 120 ms–160 ms`. */
export function explainText(e: Explain | undefined, format: (v: number) => string): string {
  if (!e) return ''
  const fired = e.member ? `fired by ${e.member}, ` : ''
  return `${fired}expected ${format(e.lower)}–${format(e.upper)}`
}
