import type { Alert, AlertHistoryEntry } from '../api/types'

export interface TimelineSegment {
  state: 'pending' | 'firing'
  start: number
  end: number
  silenced: boolean
}

export interface TimelineRow {
  /** rule_id:service */
  key: string
  rule_id: string
  rule_name: string
  service: string
  severity: string
  /** State after the newest change. */
  current: string
  segments: TimelineSegment[]
}

/**
 * Per alert (rule + service), the pending and firing stretches within [start, end],
 * from its state changes (any order). A state still on at `end` runs to `end`.
 */
export function timelineRows(history: AlertHistoryEntry[], start: number, end: number, current: Alert[] = []): TimelineRow[] {
  const byKey = new Map<string, AlertHistoryEntry[]>()
  const keys = new Set(history.map((h) => `${h.rule_id}:${h.service}`))
  // An alert pending or firing since before the range has no change in it: start it at its start.
  const synthetic: AlertHistoryEntry[] = current
    .filter((a) => (a.state === 'firing' || a.state === 'pending') && !keys.has(`${a.rule_id}:${a.service ?? ''}`))
    .map((a) => ({
      id: null,
      at: (a.state === 'firing' ? a.firing_since : null) ?? a.started_at ?? start,
      rule_id: a.rule_id,
      rule_name: a.rule_name,
      service: a.service ?? '',
      previous: 'inactive',
      status: a.state,
      severity: a.severity,
      value: a.value,
      threshold: a.threshold,
      silenced: a.silenced ?? false,
      labels: a.labels,
    }))
  for (const h of [...history, ...synthetic]) {
    const key = `${h.rule_id}:${h.service}`
    const list = byKey.get(key)
    if (list) list.push(h)
    else byKey.set(key, [h])
  }
  const rows: TimelineRow[] = []
  for (const [key, entries] of byKey) {
    entries.sort((a, b) => a.at - b.at || (a.id ?? 0) - (b.id ?? 0))
    const segments: TimelineSegment[] = []
    entries.forEach((e, i) => {
      if (e.status !== 'pending' && e.status !== 'firing') return
      const segEnd = Math.min(end, entries[i + 1]?.at ?? end)
      const segStart = Math.max(start, e.at)
      if (segEnd > segStart || (segEnd === segStart && segStart >= start && segStart <= end)) {
        segments.push({ state: e.status, start: segStart, end: segEnd, silenced: e.silenced })
      }
    })
    const last = entries[entries.length - 1]!
    rows.push({ key, rule_id: last.rule_id, rule_name: last.rule_name, service: last.service, severity: last.severity, current: last.status, segments })
  }
  const rank: Record<string, number> = { firing: 0, pending: 1 }
  return rows.sort((a, b) => (rank[a.current] ?? 2) - (rank[b.current] ?? 2) || a.rule_name.localeCompare(b.rule_name) || a.service.localeCompare(b.service))
}
