/** Types and calls for data quality and drift (`/api/v1/services/{s}/drift`, `/api/v1/samples`). */
import type { ApiClient } from './client'

export interface MetricValue {
  value: number
  /** How far the value may be off because a side was sketched (0 when exact). */
  error: number
  threshold: number
  drifted: boolean
}

export interface FeatureDrift {
  name: string
  kind: 'numerical' | 'categorical'
  method: string
  score: number
  drifted: boolean
  exact: boolean
  metrics: Record<string, MetricValue>
  reference_count: number
  current_count: number
  missing_rate: number
  type_mismatch_rate: number
  out_of_range: number
  bins: string[]
  reference_share: number[]
  current_share: number[]
}

export interface DriftReport {
  features: FeatureDrift[]
  outputs: FeatureDrift[]
  drift_score: number
  drifted: boolean
  top_features: string[]
  reference_rows: number
  current_rows: number
}

export interface ServiceDrift {
  service: string
  reference: string
  reference_source: Record<string, string | number>
  start: number
  end: number
  report: DriftReport
  drift_began_at: number | null
}

export interface DriftPoint {
  start: number
  end: number
  drift_score: number
  drifted: boolean
  features: Record<string, number>
  drifted_features: string[]
  rows: number
  missing_rates: Record<string, number>
  prediction_shares: Record<string, number>
}

export interface DriftHistory {
  service: string
  step: number
  points: DriftPoint[]
}

export interface SampledEvent {
  id: string
  start: number
  service: string
  method: string
  route: string
  status: number
  latency_seconds: number
  ttfb_seconds: number
  request_bytes: number
  response_bytes: number
}

export interface StoredSample {
  event: SampledEvent
  request: string
  response: string
  request_truncated: boolean
  response_truncated: boolean
  features: Record<string, number | string | null>
  outputs: Record<string, number | string | null>
}

export interface SamplePage {
  samples: StoredSample[]
  next_cursor: string | null
}

const svc = (name: string) => `/api/v1/services/${encodeURIComponent(name)}`

export function getDrift(api: ApiClient, service: string, range: { start: string; end: string }, signal?: AbortSignal) {
  return api.get<ServiceDrift>(`${svc(service)}/drift`, range, signal)
}

export function getDriftHistory(api: ApiClient, service: string, range: { start: string; end: string }, signal?: AbortSignal) {
  return api.get<DriftHistory>(`${svc(service)}/drift/history`, range, signal)
}

export function getSamples(api: ApiClient, service: string, contains: string, signal?: AbortSignal) {
  return api.get<SamplePage>('/api/v1/samples', { service, contains, limit: 20 }, signal)
}

/** The largest drifting first, then by Jensen-Shannon distance. */
export function rankFeatures(features: FeatureDrift[]): FeatureDrift[] {
  const js = (f: FeatureDrift) => f.metrics.jensenshannon?.value ?? 0
  return [...features].sort((a, b) => Number(b.drifted) - Number(a.drifted) || js(b) - js(a) || a.name.localeCompare(b.name))
}
