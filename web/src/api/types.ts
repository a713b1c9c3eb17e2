// Types matching the ModelMonitor HTTP/WebSocket API contract (v1).
// Times are Unix seconds (float), latencies are seconds, rates are fractions 0..1.

export type ComponentStatus = 'ok' | 'degraded' | 'down'
export type ServiceStatus = 'healthy' | 'degraded' | 'down' | 'idle'

import type { components } from './schema'

/** The server's models, generated from /openapi.json (`make types`). */
type Schemas = components['schemas']

export type ProxyStats = Schemas['ProxyStatus']
export type ComponentHealth = Schemas['ComponentHealth']
export type Health = Schemas['Health']
export type ServiceInfo = Schemas['ServiceInfo']
export type ServicesResponse = Schemas['ServiceList']

export type WindowName = '1s' | '10s' | '1m' | '5m'
export type WindowStats = Schemas['WindowStats']
export type RouteLive = Schemas['RouteLive']
export type LanguageStats = Schemas['LanguageStats']

/** One row of GET /api/v1/models or /api/v1/consumers. */
export interface DimensionSummary {
  name: string
  requests: number
  errors: number
  error_rate: number
  p50_seconds: number | null
  p95_seconds: number | null
  ttft_p95_seconds: number | null
  prompt_tokens: number
  completion_tokens: number
  tokens_estimated: number
  tokens_per_second: number | null
  cost_usd: number
  finish_reasons: Record<string, number>
}

export interface DimensionList {
  service: string
  start: number
  end: number
  by: 'model' | 'consumer'
  items: DimensionSummary[]
  folded_requests: number
}
/** The newest anomaly score of one metric, with the band it was judged against. */
export type LiveAnomaly = Omit<Schemas['LiveAnomaly'], 'member' | 'event'> & {
  /** The detector member that fired ('' when none did). */
  member?: string
  /** 'new_normal' where the detector re-learned after a lasting shift. */
  event?: string
}

/** Anomaly-tracked metrics (backend names). */
export type AnomalyMetric = 'latency_p50' | 'latency_p95' | 'latency_p99' | 'error_rate' | 'throughput'

/** A service's live state; windows and anomalies keyed by their known names. */
export type ServiceLive = Omit<Schemas['ServiceLive'], 'windows' | 'anomalies'> & {
  windows: Partial<Record<WindowName, WindowStats>>
  /** Present when anomaly detection has scored the service in the last minute. */
  anomalies?: Partial<Record<AnomalyMetric, LiveAnomaly>> | null
}

export type LiveSnapshot = Omit<Schemas['LiveSnapshot'], 'services'> & { services: ServiceLive[] }

/** The figures of one window that the overview shows (10 s: all; 1 min: rps; 5 min: requests). */
export type OverviewWindow = Schemas['OverviewWindow']

/** One service as the overview feed carries it (a full `ServiceLive` is one too). */
export type ServiceOverview = Omit<Schemas['ServiceOverview'], 'windows'> & {
  windows: Partial<Record<WindowName, OverviewWindow>>
  anomalies?: ServiceLive['anomalies']
}

export type OverviewSnapshot = Omit<Schemas['OverviewSnapshot'], 'services'> & { services: ServiceOverview[] }

export type LiveMessage =
  | { type: 'snapshot'; data: LiveSnapshot }
  | { type: 'overview'; data: OverviewSnapshot }
  | { type: 'error'; detail: string }

export type HistoricalMetric =
  | 'requests'
  | 'rps'
  | 'errors'
  | 'error_rate'
  | 'p50'
  | 'p90'
  | 'p95'
  | 'p99'
  | 'mean_latency'
  | 'status_2xx'
  | 'status_3xx'
  | 'status_4xx'
  | 'status_5xx'
  | 'status_err'
  | 'request_bytes'
  | 'response_bytes'

/** One point: [unix seconds, value or null when there is no data]. */
export type Point = [number, number | null]

export interface Series {
  metric: string
  unit: string
  points: Point[]
}

export interface HistoricalResponse {
  service: string
  route: string | null
  start: number
  end: number
  step_seconds: number
  /** Sent by the backend (not in the written contract): true when the step was raised to bound the point count. */
  capped?: boolean
  series: Series[]
  /** With anomaly=true: scores and bands of the requested latency/error/throughput metrics. */
  anomalies?: AnomalySeries[] | null
}

/** [t, value, score, expected, lower, upper, anomalous] */
export type AnomalyRow = [number, number, number, number, number, number, boolean]

export interface AnomalySeries {
  service: string
  metric: AnomalyMetric
  unit: string
  step_seconds: number
  points: AnomalyRow[]
  /** Anomaly starts and new-normal points, never thinned. */
  events?: AnomalyEvent[]
}

/** The start of an anomaly or a new normal: the member that fired and the band then. */
export interface AnomalyEvent {
  at: number
  kind: 'anomaly' | 'new_normal'
  member: string
  value: number
  score: number
  expected: number
  lower: number
  upper: number
}

export interface RouteStats {
  method: string
  route: string
  requests: number
  errors: number
  error_rate: number
  p50_seconds: number | null
  p95_seconds: number | null
  p99_seconds: number | null
}

export interface RoutesResponse {
  /** Sent by the backend (not in the written contract): the resolved range. */
  start?: number
  end?: number
  routes: RouteStats[]
}

/** One raw request. The backend sends "" (not null) for a missing route/error/model and 0 for no status. */
export interface RequestRecord {
  id: string
  start: number
  service: string
  method: string
  route: string | null
  path: string
  status: number | null
  latency_seconds: number | null
  ttfb_seconds: number | null
  request_bytes: number | null
  response_bytes: number | null
  error: string | null
  model: string | null
  client: string | null
  consumer: string
  model_version: string
  protocol: string
  task: string
  prompt_tokens: number
  completion_tokens: number
  tokens_estimated: boolean
  ttft_seconds: number
  finish_reason: string
  streamed: boolean
  cost_usd: number
}

export interface RequestsResponse {
  requests: RequestRecord[]
  next_cursor: string | null
}

export type AlertState = 'pending' | 'firing' | 'resolved'

export interface Alert {
  id: string
  rule_id: string
  rule_name: string
  service: string | null
  state: AlertState
  severity: string
  value: number | null
  threshold: number | null
  started_at: number | null
  resolved_at: number | null
  labels: Record<string, string>
  summary: string
  // Also sent by the alerting backend (not in the written contract):
  metric?: string | null
  firing_since?: number | null
  last_notified_at?: number | null
  silenced?: boolean
}

export interface AlertsResponse {
  alerts: Alert[]
}

/** FastAPI-style error body. */
export interface ValidationIssue {
  loc: (string | number)[]
  msg: string
  type?: string
}

export interface ErrorBody {
  detail: string | ValidationIssue[]
}

// ---- Alerting (docs/alerting.md; /api/v1/alerts/*) ----
// Durations are seconds, thresholds are in the metric's API unit (seconds, fractions, req/s, events).

export type RuleMetric =
  | 'latency_p50'
  | 'latency_p90'
  | 'latency_p95'
  | 'latency_p99'
  | 'error_rate'
  | '5xx_rate'
  | 'throughput'
  | 'dropped_events'
export type Comparator = '>' | '>=' | '<' | '<='
export type Severity = 'info' | 'warning' | 'critical'
export type RuleWindow = '10s' | '1m' | '5m'

/** A stored rule as the API returns it (`ThresholdRule`, `for` under its public name). */
export interface AlertRule {
  id: string
  name: string
  kind: 'threshold' | (string & {})
  enabled: boolean
  service: string
  route: string | null
  severity: Severity
  labels: Record<string, string>
  summary: string
  /** Channel names or types; null = every channel, [] = none. */
  channels: string[] | null
  for: number
  keep_firing_for: number
  repeat_interval: number
  source: 'api' | 'config'
  created_at: number
  updated_at: number
  metric: RuleMetric
  comparator: Comparator
  threshold: number
  window: RuleWindow
  min_requests: number
}

/** Body of POST /rules and PUT /rules/{id}: `id`, `source` and the times are set by the server. */
export type RuleInput = Omit<AlertRule, 'id' | 'source' | 'created_at' | 'updated_at' | 'kind'> & { kind?: 'threshold' }

export interface RulesResponse {
  rules: AlertRule[]
}

/** One state change of one alert (GET /history, newest first). */
export interface AlertHistoryEntry {
  id: number | null
  at: number
  rule_id: string
  rule_name: string
  service: string
  previous: string
  /** inactive | pending | firing | resolved */
  status: string
  severity: string
  value: number | null
  threshold: number | null
  silenced: boolean
  labels: Record<string, string>
}

export interface AlertHistoryResponse {
  history: AlertHistoryEntry[]
}

export type MatcherOp = '=' | '!=' | '=~' | '!~'

export interface Matcher {
  name: string
  value: string
  op: MatcherOp
}

export interface Silence {
  id: string
  matchers: Matcher[]
  starts_at: number
  ends_at: number
  comment: string
  created_by: string
  created_at: number
}

/** Body of POST/PUT /silences; times accept Unix seconds, ISO-8601, `now` or `-1h`. */
export interface SilenceInput {
  matchers: Matcher[]
  starts_at: number | string
  ends_at: number | string
  comment?: string
  created_by?: string
}

export interface SilencesResponse {
  silences: Silence[]
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'refused' | 'skipped'

export interface Delivery {
  id: number | null
  notification_id: string
  channel: string
  channel_type: string
  service: string
  status: DeliveryStatus
  created_at: number
  attempts: number
  latency_ms: number | null
  http_status: number | null
  error: string
  alert_ids: string[]
  finished_at: number | null
  claimed_until: number
  /** Never shown by the API (null). */
  notification?: null
}

export interface DeliveriesResponse {
  deliveries: Delivery[]
}

export interface Channel {
  name: string
  type: string
  enabled: boolean
  disabled_reason: string
  disabled_at: number | null
  consecutive_failures: number
  last_success_at: number | null
  last_failure_at: number | null
  last_error: string
  /** Settings with secrets shown as `***`. */
  config: Record<string, unknown>
}

export interface ChannelsResponse {
  channels: Channel[]
}

// ---- Monitored services at run time (/api/v1/config/services; docs/production.md) ----

/** Where a service is declared: the YAML file (read-only here) or the API. */
export type ServiceSource = Schemas['ServiceSource']

/** The fields of a service's configuration the dashboard edits (ServiceConfig). */
export interface ServiceConfigInput {
  name: string
  upstream: string
  /** Own listening address `host:port`; null shares the main port. */
  listen: string | null
  path_prefix: string | null
  strip_prefix: boolean
  route_patterns: string[]
  model_header: string
  model_json_field: string | null
  timeout_seconds: number
  connect_timeout_seconds: number
  preserve_host: boolean
  propagate_trace: boolean
}

/** A service as the API returns it; `config` also holds fields the form does not edit (tls, sampling...). */
export type CatalogEntry = Omit<Schemas['CatalogEntry'], 'config'> & {
  config: ServiceConfigInput & Record<string, unknown>
}

export type CatalogResponse = Omit<Schemas['CatalogList'], 'services'> & { services: CatalogEntry[] }

/** POST /api/v1/config/services/test: what a dry run of the upstream found. */
export type ConnectionTest = Schemas['ConnectionTest']
