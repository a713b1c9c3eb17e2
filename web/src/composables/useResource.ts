import { getCurrentScope, onScopeDispose, ref, shallowRef, toValue, watch, type MaybeRefOrGetter, type Ref, type ShallowRef, type WatchSource } from 'vue'
import { ApiError, NetworkError } from '../api/client'

export interface ResourceOptions {
  /** Re-fetch every N ms after the previous fetch finished; null/0 = no polling. */
  intervalMs?: MaybeRefOrGetter<number | null | undefined>
  /** Re-fetch (and reset loading) when any of these change. */
  watch?: WatchSource[]
  /** Skip fetching while false. */
  enabled?: MaybeRefOrGetter<boolean>
  /** Keep the previous data while the watch sources change (default true). */
  keepPrevious?: boolean
}

export interface Resource<T> {
  data: ShallowRef<T | null>
  error: ShallowRef<ApiError | null>
  /** True while there is no data for the current parameters yet. */
  loading: Ref<boolean>
  /** Unix ms of the last successful fetch. */
  updatedAt: Ref<number | null>
  refresh: () => Promise<void>
  stop: () => void
}

function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e
  return new NetworkError('', e)
}

/** A fetched value with loading/error state, optional polling and parameter watching. */
export function useResource<T>(fetcher: (signal: AbortSignal) => Promise<T>, opts: ResourceOptions = {}): Resource<T> {
  const data = shallowRef<T | null>(null) as ShallowRef<T | null>
  const error = shallowRef<ApiError | null>(null)
  const loading = ref(true)
  const updatedAt = ref<number | null>(null)
  let controller: AbortController | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let stopped = false
  let generation = 0

  const clearTimer = () => {
    if (timer !== null) clearTimeout(timer)
    timer = null
  }

  const schedule = () => {
    clearTimer()
    const ms = toValue(opts.intervalMs)
    if (stopped || !ms || ms <= 0) return
    timer = setTimeout(() => void refresh(), ms)
  }

  async function refresh(): Promise<void> {
    if (stopped) return
    clearTimer()
    if (opts.enabled !== undefined && !toValue(opts.enabled)) return
    controller?.abort()
    const c = new AbortController()
    controller = c
    const gen = ++generation
    try {
      const value = await fetcher(c.signal)
      if (gen !== generation) return
      data.value = value
      error.value = null
      updatedAt.value = Date.now()
    } catch (e) {
      if (gen !== generation || c.signal.aborted) return
      error.value = toApiError(e)
    } finally {
      if (gen === generation) {
        loading.value = false
        controller = null
        schedule()
      }
    }
  }

  const stop = () => {
    stopped = true
    clearTimer()
    controller?.abort()
  }

  if (opts.watch && opts.watch.length) {
    watch(opts.watch, () => {
      if (opts.keepPrevious === false) data.value = null
      loading.value = true
      error.value = null
      void refresh()
    })
  }
  if (opts.intervalMs !== undefined && typeof opts.intervalMs !== 'number') {
    watch(() => toValue(opts.intervalMs), () => (timer === null && !controller ? schedule() : undefined))
  }
  if (opts.enabled !== undefined && typeof opts.enabled !== 'boolean') {
    watch(() => toValue(opts.enabled), (on) => (on ? void refresh() : clearTimer()))
  }

  if (getCurrentScope()) onScopeDispose(stop)
  void refresh()
  return { data, error, loading, updatedAt, refresh, stop }
}
