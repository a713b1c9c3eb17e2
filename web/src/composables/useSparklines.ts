import { getCurrentScope, onScopeDispose, ref, watch, type Ref } from 'vue'
import { api } from '../api/client'
import type { Point } from '../api/types'

export const SPARK_STEP = 60

/**
 * 15-minute rps sparklines (historical, step 60 s) for many services, refreshed
 * each minute with a small number of concurrent requests.
 */
export function useSparklines(names: Ref<string[]>, opts: { refreshMs?: number; concurrency?: number } = {}) {
  const refreshMs = opts.refreshMs ?? 60_000
  const concurrency = opts.concurrency ?? 4
  const series = new Map<string, Point[]>()
  const version = ref(0)
  const fetchedAt = new Map<string, number>()
  const queue: string[] = []
  let active = 0
  let stopped = false
  const controller = new AbortController()

  const pump = () => {
    while (!stopped && active < concurrency && queue.length) {
      const name = queue.shift()!
      active++
      api
        .historical({ service: name, metrics: ['rps'], start: '-15m', end: 'now', step: '60s' }, controller.signal)
        .then((res) => {
          series.set(name, res.series.find((s) => s.metric === 'rps')?.points ?? [])
          version.value++
        })
        .catch(() => {
          /* a missing sparkline is not an error worth showing */
        })
        .finally(() => {
          fetchedAt.set(name, Date.now())
          active--
          pump()
        })
    }
  }

  const enqueueDue = () => {
    const now = Date.now()
    for (const n of names.value) {
      const at = fetchedAt.get(n)
      if ((at === undefined || now - at >= refreshMs) && !queue.includes(n)) {
        fetchedAt.set(n, now) // reserve
        queue.push(n)
      }
    }
    pump()
  }

  watch(names, enqueueDue, { immediate: true })
  const timer = setInterval(enqueueDue, 5_000)
  const stop = () => {
    stopped = true
    clearInterval(timer)
    controller.abort()
  }
  if (getCurrentScope()) onScopeDispose(stop)

  /** The series with its last point patched by the live rate. */
  function get(name: string, liveRps: number | null, at: number | null): Point[] {
    void version.value
    const pts = series.get(name) ?? []
    return patchLast(pts, liveRps, at)
  }
  return { get, version, stop }
}

/** Replace the current minute's point with the live value (or append one). */
export function patchLast(points: Point[], liveValue: number | null, at: number | null, step = SPARK_STEP): Point[] {
  if (liveValue === null || at === null) return points
  const bucket = Math.floor(at / step) * step
  const out = points.slice()
  const last = out[out.length - 1]
  if (last && last[0] >= bucket) out[out.length - 1] = [last[0], liveValue]
  else out.push([bucket, liveValue])
  return out
}
