import { computed, ref, shallowRef, toValue, watch, type MaybeRefOrGetter } from 'vue'
import { api, ApiError, NetworkError, NotFoundError } from '../api/client'
import type { Alert, HistoricalMetric, RequestRecord, RequestsResponse, RouteStats } from '../api/types'
import { useResource } from './useResource'
import type { TimeRange } from '../lib/timeRange'
import { rangeQuery } from '../lib/timeRange'

/** GET /api/v1/health, polled. */
export function useHealth(intervalMs = 5000) {
  return useResource((signal) => api.health(signal), { intervalMs })
}

/** GET /api/v1/services, polled. */
export function useServices(intervalMs = 30_000) {
  return useResource((signal) => api.services(signal), { intervalMs })
}

/** GET /api/v1/metrics/historical for a service and range; re-fetched when they change. */
export function useHistory(
  params: MaybeRefOrGetter<{ service: string; metrics: HistoricalMetric[]; range: TimeRange; route?: string; anomaly?: boolean } | null>,
  intervalMs: MaybeRefOrGetter<number | null> = null,
) {
  const key = computed(() => JSON.stringify(toValue(params)))
  return useResource(
    (signal) => {
      const p = toValue(params)
      if (!p) return Promise.resolve(null)
      return api.historical({ service: p.service, metrics: p.metrics, route: p.route, anomaly: p.anomaly, ...rangeQuery(p.range) }, signal)
    },
    { watch: [key], intervalMs, enabled: () => toValue(params) !== null },
  )
}

/** GET /api/v1/routes over a range. */
export function useRoutes(params: MaybeRefOrGetter<{ service: string; range: TimeRange } | null>, intervalMs: MaybeRefOrGetter<number | null> = null) {
  const key = computed(() => JSON.stringify(toValue(params)))
  return useResource<RouteStats[]>(
    async (signal) => {
      const p = toValue(params)
      if (!p) return []
      const q = rangeQuery(p.range)
      return (await api.routes({ service: p.service, start: q.start, end: q.end }, signal)).routes
    },
    { watch: [key], intervalMs, enabled: () => toValue(params) !== null },
  )
}

/** GET /api/v1/models or /api/v1/consumers over a range (optionally within one consumer or model). */
export function useDimensions(
  params: MaybeRefOrGetter<{ by: 'model' | 'consumer'; service: string; range: TimeRange; model?: string; consumer?: string } | null>,
  intervalMs: MaybeRefOrGetter<number | null> = null,
) {
  const key = computed(() => JSON.stringify(toValue(params)))
  return useResource(
    (signal) => {
      const p = toValue(params)
      if (!p) return Promise.resolve(null)
      const q = rangeQuery(p.range)
      return api.dimensions(p.by, { service: p.service, start: q.start, end: q.end, model: p.model, consumer: p.consumer }, signal)
    },
    { watch: [key], intervalMs, enabled: () => toValue(params) !== null },
  )
}

export interface RequestFilters {
  service?: string
  route?: string
  model?: string
  consumer?: string
  status_class?: string
  errors_only?: boolean
  min_latency_ms?: number
  start?: string | number
  end?: string | number
  limit?: number
}

/**
 * GET /api/v1/requests (newest first), polled every `intervalMs` while live.
 * `loadOlder()` follows `next_cursor` and appends older pages (reset when the filters change).
 */
export function useRequests(filters: MaybeRefOrGetter<RequestFilters>, intervalMs: MaybeRefOrGetter<number | null> = 1500) {
  const key = computed(() => JSON.stringify(toValue(filters)))
  const res = useResource<RequestsResponse>((signal) => api.requests({ limit: 50, ...toValue(filters) }, signal), { watch: [key], intervalMs })
  const older = shallowRef<RequestRecord[]>([])
  const olderCursor = ref<string | null | undefined>(undefined)
  const loadingOlder = ref(false)
  watch(key, () => {
    older.value = []
    olderCursor.value = undefined
  })
  const requests = computed(() => [...(res.data.value?.requests ?? []), ...older.value])
  const nextCursor = computed(() => (olderCursor.value === undefined ? (res.data.value?.next_cursor ?? null) : olderCursor.value))
  async function loadOlder() {
    const cursor = nextCursor.value
    if (!cursor || loadingOlder.value) return
    loadingOlder.value = true
    const forKey = key.value
    try {
      const page = await api.requests({ limit: 50, ...toValue(filters), cursor })
      if (forKey !== key.value) return
      older.value = [...older.value, ...page.requests]
      olderCursor.value = page.next_cursor
    } catch (e) {
      res.error.value = e instanceof ApiError ? e : new NetworkError('', e)
    } finally {
      loadingOlder.value = false
    }
  }
  return { ...res, requests, nextCursor, loadOlder, loadingOlder }
}

/**
 * GET /api/v1/alerts. A 404 (or 503: not running) means alerting is not configured:
 * `configured` becomes false and no error is reported.
 */
export function useAlerts(intervalMs = 15_000) {
  const res = useResource<{ configured: boolean; alerts: Alert[] }>(
    async (signal) => {
      try {
        return { configured: true, alerts: (await api.alerts(signal)).alerts }
      } catch (e) {
        // 404: no alerting endpoint (older server); 503: alerting is not running in that process.
        if (e instanceof NotFoundError || (e instanceof ApiError && e.status === 503)) return { configured: false, alerts: [] }
        throw e
      }
    },
    { intervalMs },
  )
  const firing = computed(() => (res.data.value?.alerts ?? []).filter((a) => a.state === 'firing'))
  const configured = computed(() => res.data.value?.configured ?? true)
  return { ...res, firing, configured }
}
