import { computed, ref, toValue, type MaybeRefOrGetter } from 'vue'
import { api, ApiError, NetworkError } from '../api/client'
import type { AlertHistoryEntry, AlertRule, Channel, Delivery, DeliveryStatus, Silence } from '../api/types'
import { useResource } from './useResource'

/** GET /api/v1/alerts/history over the last `hours` hours (newest first), polled. */
export function useAlertHistory(hours = 24, intervalMs = 15_000) {
  return useResource<AlertHistoryEntry[]>(
    async (signal) => (await api.alertHistory({ start: `-${hours}h`, limit: 2000 }, signal)).history,
    { intervalMs },
  )
}

/** GET /api/v1/alerts/rules, polled. */
export function useRules(intervalMs = 30_000) {
  return useResource<AlertRule[]>(async (signal) => (await api.rules(signal)).rules, { intervalMs })
}

/** GET /api/v1/alerts/silences (expired ones too when asked), polled. */
export function useSilences(includeExpired: MaybeRefOrGetter<boolean> = false, intervalMs = 15_000) {
  return useResource<Silence[]>(async (signal) => (await api.silences(toValue(includeExpired), signal)).silences, {
    intervalMs,
    watch: [() => toValue(includeExpired)],
  })
}

/** GET /api/v1/alerts/deliveries with optional filters, polled. */
export function useDeliveries(filters: MaybeRefOrGetter<{ channel?: string; status?: DeliveryStatus }> = {}, intervalMs = 10_000) {
  const key = computed(() => JSON.stringify(toValue(filters)))
  return useResource<Delivery[]>(async (signal) => (await api.deliveries({ limit: 200, ...toValue(filters) }, signal)).deliveries, {
    intervalMs,
    watch: [key],
  })
}

/** GET /api/v1/alerts/channels, polled. */
export function useChannels(intervalMs = 15_000) {
  return useResource<Channel[]>(async (signal) => (await api.channels(signal)).channels, { intervalMs })
}

/**
 * Run a mutation (create, delete, enable...) with a busy flag and the error kept for display.
 * Resolves to the result, or undefined when it failed (the error is in `error`).
 */
export function useAction() {
  const busy = ref(false)
  const error = ref<ApiError | null>(null)
  async function run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    busy.value = true
    error.value = null
    try {
      return await fn()
    } catch (e) {
      error.value = e instanceof ApiError ? e : new NetworkError('', e)
      return undefined
    } finally {
      busy.value = false
    }
  }
  return { busy, error, run }
}

/** 404 (no alerting endpoint) or 503 (alerting not running in that process). */
export function isNotConfigured(error: ApiError | null | undefined): boolean {
  return !!error && (error.status === 404 || error.status === 503)
}
