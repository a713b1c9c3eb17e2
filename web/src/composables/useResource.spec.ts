import { flushPromises } from '@vue/test-utils'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { effectScope, nextTick, ref } from 'vue'
import { NotFoundError } from '../api/client'
import { useResource } from './useResource'

describe('useResource', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('loads, then polls after each completed fetch', async () => {
    let n = 0
    const fetcher = vi.fn(async () => ++n)
    const scope = effectScope()
    const r = scope.run(() => useResource(fetcher, { intervalMs: 1000 }))!
    expect(r.loading.value).toBe(true)
    await flushPromises()
    expect(r.data.value).toBe(1)
    expect(r.loading.value).toBe(false)
    await vi.advanceTimersByTimeAsync(1000)
    expect(r.data.value).toBe(2)
    scope.stop()
    await vi.advanceTimersByTimeAsync(5000)
    expect(fetcher).toHaveBeenCalledTimes(2) // stopped with its scope
  })

  it('keeps the last data and exposes typed errors', async () => {
    let fail = false
    const scope = effectScope()
    const r = scope.run(() =>
      useResource(
        async () => {
          if (fail) throw new NotFoundError('/x')
          return 'ok'
        },
        { intervalMs: 1000 },
      ),
    )!
    await flushPromises()
    fail = true
    await vi.advanceTimersByTimeAsync(1000)
    expect(r.data.value).toBe('ok')
    expect(r.error.value).toBeInstanceOf(NotFoundError)
    fail = false
    await vi.advanceTimersByTimeAsync(1000)
    expect(r.error.value).toBeNull()
    scope.stop()
  })

  it('aborts the fetch in flight when its parameters change, and ignores its late answer', async () => {
    const param = ref('a')
    const signals: AbortSignal[] = []
    const resolvers: ((v: string) => void)[] = []
    const scope = effectScope()
    const r = scope.run(() =>
      useResource(
        (signal) => {
          signals.push(signal)
          return new Promise<string>((res) => resolvers.push(res))
        },
        { watch: [param] },
      ),
    )!
    param.value = 'b'
    await nextTick()
    expect(signals[0]!.aborted).toBe(true)
    expect(r.loading.value).toBe(true)
    resolvers[1]!('from b')
    resolvers[0]!('late from a')
    await flushPromises()
    expect(r.data.value).toBe('from b')
    scope.stop()
  })
})
