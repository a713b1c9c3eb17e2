// Formatting helpers: every number on screen carries a unit.

export const DASH = '—'

function isNum(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}

/** Latency given in SECONDS, shown in ms (or s above 10 s). */
export function formatMs(seconds: number | null | undefined): string {
  if (!isNum(seconds)) return DASH
  const ms = seconds * 1000
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms >= 100) return `${Math.round(ms)} ms`
  if (ms >= 10) return `${ms.toFixed(1)} ms`
  return `${ms.toFixed(2)} ms`
}

/** Requests per second. */
export function formatRps(rps: number | null | undefined): string {
  if (!isNum(rps)) return DASH
  if (rps === 0) return '0 req/s'
  if (rps >= 1000) return `${(rps / 1000).toFixed(1)}k req/s`
  if (rps >= 100) return `${Math.round(rps)} req/s`
  if (rps >= 10) return `${rps.toFixed(1)} req/s`
  return `${rps.toFixed(2)} req/s`
}

/** A fraction 0..1 shown as a percentage. */
export function formatPercent(fraction: number | null | undefined, digits = 1): string {
  if (!isNum(fraction)) return DASH
  const pct = fraction * 100
  if (pct === 0) return '0 %'
  if (pct < 0.1 && digits > 0) return '<0.1 %'
  return `${pct.toFixed(pct >= 99.95 || Number.isInteger(pct) ? 0 : digits)} %`
}

const BYTE_UNITS = ['B', 'KB', 'MB', 'GB', 'TB']

/** Bytes with a 1024 base: B, KB, MB, GB. */
export function formatBytes(bytes: number | null | undefined): string {
  if (!isNum(bytes)) return DASH
  let v = Math.abs(bytes)
  let i = 0
  while (v >= 1024 && i < BYTE_UNITS.length - 1) {
    v /= 1024
    i++
  }
  const sign = bytes < 0 ? '-' : ''
  const num = i === 0 ? String(Math.round(v)) : v >= 100 ? v.toFixed(0) : v.toFixed(1)
  return `${sign}${num} ${BYTE_UNITS[i]}`
}

/** Integer count with thousands separators and an optional unit. */
export function formatCount(n: number | null | undefined, unit = ''): string {
  if (!isNum(n)) return DASH
  const s = Math.round(n).toLocaleString('en-US')
  return unit ? `${s} ${unit}` : s
}

/** A duration in seconds: "42 s", "5 min", "3 h 12 min", "2 d 4 h". */
export function formatDuration(seconds: number | null | undefined): string {
  if (!isNum(seconds)) return DASH
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min`
  const h = Math.floor(m / 60)
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`
  const d = Math.floor(h / 24)
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`
}

/** "just now", "12 s ago", "5 min ago", "in 3 s"; times are Unix seconds. */
export function formatRelative(ts: number | null | undefined, now: number = Date.now() / 1000): string {
  if (!isNum(ts)) return 'never'
  const diff = now - ts
  if (Math.abs(diff) < 1) return 'just now'
  if (diff < 0) return `in ${formatDuration(-diff)}`
  return `${formatDuration(diff)} ago`
}

/** Clock time in the viewer's time zone, e.g. "14:03:07". */
export function formatTime(ts: number | null | undefined, withSeconds = true): string {
  if (!isNum(ts)) return DASH
  return new Date(ts * 1000).toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    ...(withSeconds ? { second: '2-digit' } : {}),
  })
}

/** Date and time in the viewer's time zone. */
export function formatDateTime(ts: number | null | undefined): string {
  if (!isNum(ts)) return DASH
  return new Date(ts * 1000).toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  })
}

/** Axis tick label for a time: clock time for short spans, date + time for long ones. */
export function formatTick(ts: number, spanSeconds: number): string {
  const d = new Date(ts * 1000)
  if (spanSeconds > 2 * 86400) {
    return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' })
  }
  if (spanSeconds > 600) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

/** The viewer's IANA time zone name, for display. */
export function viewerTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time'
  } catch {
    return 'local time'
  }
}
