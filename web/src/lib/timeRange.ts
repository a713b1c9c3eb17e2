// Time ranges for the service page: live (WebSocket) or historical (REST).

export type RelativeKey = '15m' | '1h' | '24h' | '7d'

export type TimeRange =
  | { kind: 'live' }
  | { kind: 'relative'; key: RelativeKey }
  | { kind: 'custom'; start: number; end: number }

import type { Point } from '../api/types'

export const RELATIVE_SECONDS: Record<RelativeKey, number> = {
  '15m': 15 * 60,
  '1h': 3600,
  '24h': 86400,
  '7d': 7 * 86400,
}

const RELATIVE_STEP: Record<RelativeKey, string> = { '15m': '60s', '1h': '60s', '24h': '5m', '7d': '1h' }

export const RANGE_OPTIONS: { id: 'live' | RelativeKey | 'custom'; label: string }[] = [
  { id: 'live', label: 'Live' },
  { id: '15m', label: '15 m' },
  { id: '1h', label: '1 h' },
  { id: '24h', label: '24 h' },
  { id: '7d', label: '7 d' },
  { id: 'custom', label: 'Custom' },
]

export const LIVE: TimeRange = { kind: 'live' }

export function rangeId(r: TimeRange): 'live' | RelativeKey | 'custom' {
  return r.kind === 'live' ? 'live' : r.kind === 'relative' ? r.key : 'custom'
}

/** Span in seconds (live = the last 5 minutes). */
export function rangeSeconds(r: TimeRange): number {
  if (r.kind === 'live') return 300
  if (r.kind === 'relative') return RELATIVE_SECONDS[r.key]
  return Math.max(60, r.end - r.start)
}

/** Step for a custom span: about 240 points, at least 60 s, in whole minutes. */
export function stepFor(spanSeconds: number): string {
  const minutes = Math.max(1, Math.ceil(spanSeconds / 240 / 60))
  return `${minutes * 60}s`
}

/** start/end/step query parameters for the historical endpoints. */
export function rangeQuery(r: TimeRange): { start: string | number; end: string | number; step: string } {
  if (r.kind === 'live') return { start: '-5m', end: 'now', step: '60s' }
  if (r.kind === 'relative') return { start: `-${r.key}`, end: 'now', step: RELATIVE_STEP[r.key] }
  return { start: Math.floor(r.start), end: Math.ceil(r.end), step: stepFor(r.end - r.start) }
}

/** Serialize to route query parameters. */
export function rangeToQuery(r: TimeRange): Record<string, string> {
  if (r.kind === 'live') return {}
  if (r.kind === 'relative') return { range: r.key }
  return { range: 'custom', start: String(Math.floor(r.start)), end: String(Math.floor(r.end)) }
}

/** Parse route query parameters (unknown -> live). */
export function rangeFromQuery(q: Record<string, unknown>): TimeRange {
  const range = typeof q.range === 'string' ? q.range : ''
  if (range in RELATIVE_SECONDS) return { kind: 'relative', key: range as RelativeKey }
  if (range === 'custom') {
    const start = Number(q.start)
    const end = Number(q.end)
    if (Number.isFinite(start) && Number.isFinite(end) && end > start) return { kind: 'custom', start, end }
  }
  return LIVE
}

/** Value for <input type="datetime-local"> in the viewer's time zone. */
export function toLocalInput(ts: number): string {
  const d = new Date(ts * 1000)
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** Parse a datetime-local value (viewer's time zone) to Unix seconds, NaN if invalid. */
export function fromLocalInput(v: string): number {
  if (!v) return Number.NaN
  return new Date(v).getTime() / 1000
}

/**
 * A per-second rate of the still-open last step is "requests so far / step": rescale it to
 * the time elapsed in that step (or drop it when less than 5 s have passed).
 */
export function completeLastRate(points: Point[], stepSeconds: number, end: number): Point[] {
  const last = points[points.length - 1]
  if (!last || last[1] === null || last[0] + stepSeconds <= end) return points
  const elapsed = end - last[0]
  if (elapsed < 5) return points.slice(0, -1)
  return [...points.slice(0, -1), [last[0], (last[1] * stepSeconds) / elapsed]]
}
