// Rule form <-> API conversion, unit hints, client-side checks and 422 mapping.
import { ApiError } from '../api/client'
import type { AlertRule, Comparator, RuleInput, RuleMetric, RuleWindow, Severity } from '../api/types'
import { formatMs, formatPercent, formatRps } from './format'

export const METRICS: RuleMetric[] = ['error_rate', '5xx_rate', 'latency_p50', 'latency_p90', 'latency_p95', 'latency_p99', 'throughput', 'dropped_events']
export const COMPARATORS: Comparator[] = ['>', '>=', '<', '<=']
export const WINDOWS: RuleWindow[] = ['10s', '1m', '5m']
export const SEVERITIES: Severity[] = ['info', 'warning', 'critical']

export interface MetricUnit {
  /** Unit typed in the form. */
  unit: string
  /** Form value -> API value. */
  toApi: (v: number) => number
  /** API value -> form value. */
  fromApi: (v: number) => number
  hint: string
}

const identity = (v: number) => v
/** Avoid 0.1 + 0.2 style tails when converting units. */
const clean = (v: number) => Number.parseFloat(v.toPrecision(12))

export function metricUnit(metric: RuleMetric): MetricUnit {
  if (metric.startsWith('latency_')) return { unit: 'ms', toApi: (v) => clean(v / 1000), fromApi: (v) => clean(v * 1000), hint: 'milliseconds (sent to the API in seconds)' }
  if (metric === 'error_rate' || metric === '5xx_rate') return { unit: '%', toApi: (v) => clean(v / 100), fromApi: (v) => clean(v * 100), hint: 'percent of requests (sent as a fraction)' }
  if (metric === 'throughput') return { unit: 'req/s', toApi: identity, fromApi: identity, hint: 'requests per second' }
  return { unit: 'events', toApi: identity, fromApi: identity, hint: 'events dropped by proxies in the window' }
}

export const METRIC_LABELS: Record<RuleMetric, string> = {
  error_rate: 'Error rate',
  '5xx_rate': '5xx rate',
  latency_p50: 'Latency p50',
  latency_p90: 'Latency p90',
  latency_p95: 'Latency p95',
  latency_p99: 'Latency p99',
  throughput: 'Throughput',
  dropped_events: 'Dropped events',
}

/** A threshold in the API unit, formatted with its unit. */
export function formatThreshold(metric: string | null | undefined, value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  if (metric?.startsWith('latency_')) return formatMs(value)
  if (metric === 'error_rate' || metric === '5xx_rate') return formatPercent(value, 2)
  if (metric === 'throughput') return formatRps(value)
  if (metric === 'dropped_events') return `${value} events`
  return String(value)
}

/** What the form edits: text as typed. */
export interface RuleForm {
  name: string
  enabled: boolean
  service: string
  route: string
  metric: RuleMetric
  comparator: Comparator
  /** In the metric's form unit (ms, %, req/s, events). */
  threshold: string
  window: RuleWindow
  for: string
  keep_firing_for: string
  repeat_interval: string
  min_requests: string
  severity: Severity
  /** "team=ml, tier=gold" */
  labels: string
  summary: string
  /** Notify every channel (channels: null) or only the listed ones. */
  allChannels: boolean
  /** Comma-separated channel names or types. */
  channels: string
}

export type RuleField = keyof RuleForm
export type FieldErrors = Partial<Record<RuleField | 'general', string>>

export function emptyRuleForm(): RuleForm {
  return {
    name: '',
    enabled: true,
    service: '*',
    route: '',
    metric: 'error_rate',
    comparator: '>',
    threshold: '',
    window: '1m',
    for: '0s',
    keep_firing_for: '0s',
    repeat_interval: '4h',
    min_requests: '10',
    severity: 'warning',
    labels: '',
    summary: '',
    allChannels: true,
    channels: '',
  }
}

/** Seconds -> the shortest exact "2h" / "90s" form. */
export function formatDurationInput(seconds: number): string {
  if (!seconds) return '0s'
  for (const [suffix, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds % size === 0) return `${seconds / size}${suffix}`
  }
  return `${seconds}s`
}

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$/
const SIZES: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/** "30s", "5m", "1h", "2d" or plain seconds -> seconds; null when not a duration. */
export function parseDurationInput(text: string): number | null {
  const m = DURATION.exec(text)
  if (!m) return null
  return Number(m[1]) * SIZES[m[2] ?? 's']!
}

export function ruleToForm(rule: AlertRule): RuleForm {
  const unit = metricUnit(rule.metric)
  return {
    name: rule.name,
    enabled: rule.enabled,
    service: rule.service,
    route: rule.route ?? '',
    metric: rule.metric,
    comparator: rule.comparator,
    threshold: String(unit.fromApi(rule.threshold)),
    window: rule.window,
    for: formatDurationInput(rule.for),
    keep_firing_for: formatDurationInput(rule.keep_firing_for),
    repeat_interval: formatDurationInput(rule.repeat_interval),
    min_requests: String(rule.min_requests),
    severity: rule.severity,
    labels: Object.entries(rule.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(', '),
    summary: rule.summary,
    allChannels: rule.channels === null,
    channels: (rule.channels ?? []).join(', '),
  }
}

function parseLabels(text: string): Record<string, string> | string {
  const labels: Record<string, string> = {}
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=')
    if (eq <= 0) return `"${part}" is not name=value`
    const key = part.slice(0, eq).trim()
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(key)) return `label name "${key}" must be letters, digits and _`
    labels[key] = part.slice(eq + 1).trim()
  }
  return labels
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,99}$/

/** Obvious mistakes caught before sending; the API checks the rest (shown via `apiFieldErrors`). */
export function validateRuleForm(f: RuleForm): FieldErrors {
  const e: FieldErrors = {}
  if (!f.name.trim()) e.name = 'Required'
  else if (!NAME.test(f.name)) e.name = 'Letters, digits, spaces and _.:/- only (max 100), starting with a letter or digit'
  if (!f.service.trim()) e.service = 'Pick a service or * (all services)'
  if (f.route.trim() && !f.route.trim().startsWith('/')) e.route = 'A route starts with /'
  const t = f.threshold.trim()
  const threshold = Number(t)
  if (!t) e.threshold = 'Required'
  else if (!Number.isFinite(threshold)) e.threshold = 'Must be a number'
  else if (threshold < 0) e.threshold = 'Must not be negative'
  else if ((f.metric === 'error_rate' || f.metric === '5xx_rate') && threshold > 100) e.threshold = 'A rate is at most 100 %'
  for (const field of ['for', 'keep_firing_for', 'repeat_interval'] as const) {
    if (parseDurationInput(f[field]) === null) e[field] = 'A duration such as 30s, 5m, 1h or seconds'
  }
  if (!/^\d+$/.test(f.min_requests.trim())) e.min_requests = 'A whole number ≥ 0'
  const labels = parseLabels(f.labels)
  if (typeof labels === 'string') e.labels = labels
  return e
}

/** The API body for a valid form. */
export function formToRuleInput(f: RuleForm): RuleInput {
  const labels = parseLabels(f.labels)
  return {
    kind: 'threshold',
    name: f.name.trim(),
    enabled: f.enabled,
    service: f.service.trim(),
    route: f.route.trim() || null,
    metric: f.metric,
    comparator: f.comparator,
    threshold: metricUnit(f.metric).toApi(Number(f.threshold)),
    window: f.window,
    for: parseDurationInput(f.for) ?? 0,
    keep_firing_for: parseDurationInput(f.keep_firing_for) ?? 0,
    repeat_interval: parseDurationInput(f.repeat_interval) ?? 0,
    min_requests: Number(f.min_requests),
    severity: f.severity,
    labels: typeof labels === 'string' ? {} : labels,
    summary: f.summary,
    channels: f.allChannels
      ? null
      : f.channels
          .split(',')
          .map((c) => c.trim())
          .filter(Boolean),
  }
}

/**
 * A 422's `detail[]` as errors per form field: the field is the last element of `loc` that
 * names one (`["body", "channels", 0]` -> channels). Unknown fields and non-422 errors go to `general`.
 */
export function apiFieldErrors<F extends string>(error: unknown, fields: readonly F[]): Partial<Record<F | 'general', string>> {
  const out: Partial<Record<F | 'general', string>> = {}
  const add = (key: F | 'general', msg: string) => (out[key] = out[key] ? `${out[key]}; ${msg}` : msg)
  if (!(error instanceof ApiError)) {
    add('general', error instanceof Error ? error.message : String(error))
    return out
  }
  const detail = error.body?.detail
  if (error.status !== 422 || !Array.isArray(detail)) {
    add('general', error.message)
    return out
  }
  for (const d of detail) {
    // The last element of `loc` naming a form field: ["body", "channels", 0] -> channels.
    const names = d.loc.map((l) => (l === 'for_seconds' ? 'for' : l)).filter((l): l is string => typeof l === 'string' && l !== 'body')
    const field = [...names].reverse().find((l) => (fields as readonly string[]).includes(l))
    if (field) add(field as F, d.msg)
    else add('general', names.length ? `${names.join('.')}: ${d.msg}` : d.msg)
  }
  return out
}

export const RULE_FIELDS: readonly RuleField[] = Object.keys(emptyRuleForm()) as RuleField[]

const AUTO_SUMMARY = /^(\S+) (>=|<=|>|<) (-?[\d.e+-]+) over (\S+)$/

/**
 * The server's automatic summary ("error_rate > 0.01 over 10s", API units) with units
 * ("Error rate > 1 % over 10s"); any other summary is returned as written.
 */
export function readableSummary(summary: string): string {
  const m = AUTO_SUMMARY.exec(summary)
  if (!m || !(METRICS as string[]).includes(m[1]!)) return summary
  const metric = m[1] as RuleMetric
  return `${METRIC_LABELS[metric]} ${m[2]} ${formatThreshold(metric, Number(m[3]))} over ${m[4]}`
}
