import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { LiveSnapshot } from '../api/types'
import { backoffDelay, useLive, type WebSocketLike } from './useLive'

/** A fake browser WebSocket: the test drives open/message/close. */
class FakeWebSocket implements WebSocketLike {
  static instances: FakeWebSocket[] = []
  onopen: ((ev: Event) => unknown) | null = null
  onmessage: ((ev: MessageEvent) => unknown) | null = null
  onclose: ((ev: CloseEvent) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  closed = false
  constructor(readonly url: string) {
    FakeWebSocket.instances.push(this)
  }
  close() {
    if (this.closed) return
    this.closed = true
    this.onclose?.({} as CloseEvent)
  }
  // test helpers
  open() {
    this.onopen?.({} as Event)
  }
  sent: string[] = []
  send(data: string) {
    this.sent.push(data)
  }
  deliver(snapshot: LiveSnapshot, type: 'snapshot' | 'overview' = 'snapshot') {
    this.onmessage?.({ data: JSON.stringify({ type, data: snapshot }) } as MessageEvent)
  }
  drop() {
    this.onerror?.({} as Event)
    this.close()
  }
  static get last(): FakeWebSocket {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1]!
  }
}

const snap = (at: number, rps = 5): LiveSnapshot => ({
  at,
  ingest_rate: rps,
  proxies: [],
  services: [
    {
      service: 'svc',
      status: 'healthy',
      in_flight: 0,
      last_seen: at,
      routes: [],
      windows: {
        '10s': {
          window_seconds: 10,
          requests: rps * 10,
          errors: 0,
          rps,
          error_rate: 0,
          status_classes: { '2xx': rps * 10 },
          request_bytes: 0,
          response_bytes: 0,
          p50_seconds: 0.01,
          p90_seconds: 0.02,
          p95_seconds: 0.03,
          p99_seconds: 0.04,
          mean_seconds: 0.012,
          llm: null,
        },
      },
    },
  ],
})

const opts = {
  url: 'ws://test/ws/metrics',
  WebSocketImpl: FakeWebSocket,
  random: () => 0, // no jitter: deterministic delays
  backoff: { baseDelayMs: 500, maxDelayMs: 4000, factor: 2, jitter: 0.2 },
}

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with jitter below the nominal delay', () => {
    const b = { baseDelayMs: 500, maxDelayMs: 10_000, factor: 2, jitter: 0.2 }
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, b, () => 0))).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000])
    expect(backoffDelay(2, b, () => 1)).toBe(1600)
  })
})

describe('useLive', () => {
  beforeEach(() => {
    FakeWebSocket.instances = []
    vi.useFakeTimers()
  })
  afterEach(() => vi.useRealTimers())

  it('goes live on the first snapshot and exposes it', () => {
    const live = useLive(opts)
    expect(live.state.value).toBe('connecting')
    expect(FakeWebSocket.last.url).toBe('ws://test/ws/metrics?view=overview')
    FakeWebSocket.last.open()
    expect(live.state.value).toBe('connecting')
    FakeWebSocket.last.deliver(snap(100, 7))
    expect(live.state.value).toBe('live')
    expect(live.snapshot.value?.at).toBe(100)
    expect(live.service('svc')?.windows['10s']?.rps).toBe(7)
    expect(live.history.get('svc')).toHaveLength(1)
    live.stop()
  })

  it('reconnects with exponential backoff and resets it after data flows again', () => {
    const live = useLive(opts)
    FakeWebSocket.last.open()
    FakeWebSocket.last.deliver(snap(1))

    FakeWebSocket.last.drop()
    expect(live.state.value).toBe('reconnecting')
    expect(FakeWebSocket.instances).toHaveLength(1)
    vi.advanceTimersByTime(499)
    expect(FakeWebSocket.instances).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(FakeWebSocket.instances).toHaveLength(2) // after 500 ms

    FakeWebSocket.last.drop() // server still down
    vi.advanceTimersByTime(999)
    expect(FakeWebSocket.instances).toHaveLength(2)
    vi.advanceTimersByTime(1)
    expect(FakeWebSocket.instances).toHaveLength(3) // after 1000 ms

    FakeWebSocket.last.drop()
    vi.advanceTimersByTime(2000)
    expect(FakeWebSocket.instances).toHaveLength(4) // after 2000 ms
    expect(live.attempts.value).toBe(3)

    FakeWebSocket.last.drop()
    vi.advanceTimersByTime(4000)
    FakeWebSocket.last.drop()
    vi.advanceTimersByTime(3999)
    expect(FakeWebSocket.instances).toHaveLength(5) // capped at 4000 ms
    vi.advanceTimersByTime(1)
    expect(FakeWebSocket.instances).toHaveLength(6)

    FakeWebSocket.last.open()
    FakeWebSocket.last.deliver(snap(2))
    expect(live.state.value).toBe('live')
    expect(live.attempts.value).toBe(0)
    expect(live.nextRetryAt.value).toBeNull()

    FakeWebSocket.last.drop()
    vi.advanceTimersByTime(500) // back to the base delay
    expect(FakeWebSocket.instances).toHaveLength(7)
    live.stop()
  })

  it('reconnects when a connection goes silent', () => {
    const live = useLive({ ...opts, staleAfterMs: 3000 })
    const first = FakeWebSocket.last
    first.open()
    first.deliver(snap(1))
    vi.advanceTimersByTime(4000)
    expect(first.closed).toBe(true)
    expect(live.state.value).toBe('reconnecting')
    vi.advanceTimersByTime(500)
    expect(FakeWebSocket.instances).toHaveLength(2)
    live.stop()
  })

  it('stops cleanly: no reconnect after stop()', () => {
    const live = useLive(opts)
    FakeWebSocket.last.deliver(snap(1))
    live.stop()
    expect(live.state.value).toBe('offline')
    vi.advanceTimersByTime(60_000)
    expect(FakeWebSocket.instances).toHaveLength(1)
  })

  it('retries immediately on reconnect()', () => {
    const live = useLive(opts)
    FakeWebSocket.last.drop()
    expect(FakeWebSocket.instances).toHaveLength(1)
    live.reconnect()
    expect(FakeWebSocket.instances).toHaveLength(2)
    vi.advanceTimersByTime(10_000)
    expect(FakeWebSocket.instances).toHaveLength(2) // the pending retry was cancelled
    live.stop()
  })

  it('keeps a bounded rolling history per service', () => {
    const live = useLive({ ...opts, historySeconds: 10 })
    for (let t = 0; t <= 30; t++) FakeWebSocket.last.deliver(snap(t))
    const pts = live.history.get('svc')!
    expect(pts[0]!.t).toBe(20)
    expect(pts[pts.length - 1]!.t).toBe(30)
    expect(pts[0]!.p99).toBe(0.04)
    FakeWebSocket.last.deliver(snap(30)) // duplicate time: ignored
    expect(live.history.get('svc')).toHaveLength(11)
    live.stop()
  })

  it('subscribes through the URL, then switches views over the open socket', () => {
    const live = useLive({ ...opts, subscription: { service: 'a b' } })
    const sock = FakeWebSocket.last
    expect(sock.url).toBe('ws://test/ws/metrics?service=a%20b')
    live.subscribe({ service: 'a b' }) // unchanged: nothing sent
    expect(sock.sent).toEqual([])
    sock.open()
    live.subscribe({ view: 'overview' })
    expect(sock.sent.map((m) => JSON.parse(m))).toEqual([{ type: 'subscribe', view: 'overview' }])
    live.subscribe({ service: 'svc' })
    expect(JSON.parse(sock.sent[1]!)).toEqual({ type: 'subscribe', service: 'svc' })
    sock.drop()
    vi.advanceTimersByTime(500)
    expect(FakeWebSocket.last.url).toBe('ws://test/ws/metrics?service=svc') // a reconnect asks for the current view
    live.stop()
  })

  it('takes overview messages: services for the overview and their history, no complete service', () => {
    const live = useLive(opts)
    FakeWebSocket.last.deliver(snap(5, 3), 'snapshot')
    expect(live.service('svc')).toBeDefined()
    const overview = snap(6, 4) as unknown as LiveSnapshot
    FakeWebSocket.last.deliver(overview, 'overview')
    expect(live.state.value).toBe('live')
    expect(live.snapshot.value?.services[0]?.windows['10s']?.rps).toBe(4)
    expect(live.service('svc')).toBeUndefined()
    expect(live.history.get('svc')!.map((p) => p.rps)).toEqual([3, 4])
    live.stop()
  })

  it('ignores malformed messages', () => {
    const live = useLive(opts)
    FakeWebSocket.last.onmessage?.({ data: 'not json' } as MessageEvent)
    FakeWebSocket.last.onmessage?.({ data: '{"type":"other"}' } as MessageEvent)
    expect(live.snapshot.value).toBeNull()
    expect(live.state.value).toBe('connecting')
    live.stop()
  })
})
