import { getCurrentScope, inject, onScopeDispose, ref, shallowRef, type InjectionKey, type Ref, type ShallowRef } from 'vue'
import { wsUrl } from '../api/client'
import type { LiveMessage, LiveSnapshot, OverviewSnapshot, ServiceLive, ServiceOverview } from '../api/types'

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline'

/** The part of the browser WebSocket used here (so tests can pass a fake). */
export interface WebSocketLike {
  onopen: ((ev: Event) => unknown) | null
  onmessage: ((ev: MessageEvent) => unknown) | null
  onclose: ((ev: CloseEvent) => unknown) | null
  onerror: ((ev: Event) => unknown) | null
  close(code?: number, reason?: string): void
  send(data: string): void
}

/**
 * What the feed sends: the overview of every service (small: what the overview page
 * shows), one service complete, or everything.
 */
export type LiveSubscription = { view: 'overview' } | { view: 'full' } | { service: string }

export function subscriptionQuery(sub: LiveSubscription): string {
  return 'service' in sub ? `service=${encodeURIComponent(sub.service)}` : `view=${sub.view}`
}

function sameSubscription(a: LiveSubscription, b: LiveSubscription): boolean {
  return subscriptionQuery(a) === subscriptionQuery(b)
}
export type WebSocketFactory = new (url: string) => WebSocketLike

export interface BackoffOptions {
  baseDelayMs: number
  maxDelayMs: number
  factor: number
  /** 0..1: the delay is multiplied by a random factor in [1 - jitter, 1]. */
  jitter: number
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseDelayMs: 500, maxDelayMs: 10_000, factor: 2, jitter: 0.2 }

/** Delay before reconnect attempt number `attempt` (0-based): exponential, capped, with jitter. */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const raw = Math.min(opts.maxDelayMs, opts.baseDelayMs * Math.pow(opts.factor, Math.max(0, attempt)))
  return Math.round(raw * (1 - opts.jitter * random()))
}

/** One per-second point of a service's rolling live history (10-second window values). */
export interface LivePoint {
  t: number
  rps: number
  requests: number
  errorRate: number
  p50: number | null
  p95: number | null
  p99: number | null
  statusClasses: Record<string, number>
  /** The newest anomaly scores and bands, when anomaly detection runs. */
  anomalies?: ServiceLive['anomalies']
}

/** Any snapshot the feed sends: a full (or one-service) snapshot, or the overview. */
export type AnySnapshot = LiveSnapshot | OverviewSnapshot

export interface UseLiveOptions {
  url?: string
  WebSocketImpl?: WebSocketFactory
  backoff?: Partial<BackoffOptions>
  random?: () => number
  /** Reconnect when no message arrived for this long while connected (ms). */
  staleAfterMs?: number
  /** Seconds of per-service history kept for the live charts. */
  historySeconds?: number
  autoStart?: boolean
  /** The first subscription (views change it with `subscribe`). */
  subscription?: LiveSubscription
}

export interface Live {
  /** The newest message's data: the overview, or a full / one-service snapshot. */
  snapshot: ShallowRef<AnySnapshot | null>
  state: Ref<ConnectionState>
  /** Reconnect attempts since the last message. */
  attempts: Ref<number>
  /** Unix ms when the next reconnect attempt happens (null when connected). */
  nextRetryAt: Ref<number | null>
  lastMessageAt: Ref<number | null>
  /** Bumped on every snapshot; read it to depend on `history`. */
  tick: Ref<number>
  history: Map<string, LivePoint[]>
  /** A service, complete: present while subscribed to it (or to the full view). */
  service: (name: string) => ServiceLive | undefined
  /** Switch what the feed sends (over the open socket, without reconnecting). */
  subscribe: (sub: LiveSubscription) => void
  start: () => void
  stop: () => void
  /** Close and reconnect now (e.g. from a "retry" button). */
  reconnect: () => void
}

export function toLivePoint(at: number, s: ServiceOverview): LivePoint {
  const w = s.windows['10s'] ?? s.windows['1s']
  return {
    t: at,
    rps: w?.rps ?? 0,
    requests: w?.requests ?? 0,
    errorRate: w?.error_rate ?? 0,
    p50: w?.p50_seconds ?? null,
    p95: w?.p95_seconds ?? null,
    p99: w?.p99_seconds ?? null,
    statusClasses: { ...(w?.status_classes ?? {}) },
    anomalies: s.anomalies ?? undefined,
  }
}

/** Live snapshots over /ws/metrics with automatic reconnect (exponential backoff). */
export function useLive(opts: UseLiveOptions = {}): Live {
  const backoff: BackoffOptions = { ...DEFAULT_BACKOFF, ...opts.backoff }
  const random = opts.random ?? Math.random
  const staleAfterMs = opts.staleAfterMs ?? 5000
  const historySeconds = opts.historySeconds ?? 300
  const Impl: WebSocketFactory | undefined =
    opts.WebSocketImpl ?? (typeof WebSocket !== 'undefined' ? (WebSocket as unknown as WebSocketFactory) : undefined)

  const snapshot = shallowRef<AnySnapshot | null>(null)
  let subscription: LiveSubscription = opts.subscription ?? { view: 'overview' }
  /** What the open socket was last told (its URL, then subscribe messages). */
  let told: LiveSubscription | null = null
  const state = ref<ConnectionState>('connecting')
  const attempts = ref(0)
  const nextRetryAt = ref<number | null>(null)
  const lastMessageAt = ref<number | null>(null)
  const tick = ref(0)
  const history = new Map<string, LivePoint[]>()
  let byName = new Map<string, ServiceLive>()

  let ws: WebSocketLike | null = null
  let retryTimer: ReturnType<typeof setTimeout> | null = null
  let staleTimer: ReturnType<typeof setInterval> | null = null
  let running = false

  const clearRetry = () => {
    if (retryTimer !== null) clearTimeout(retryTimer)
    retryTimer = null
    nextRetryAt.value = null
  }

  function handleSnapshot(data: AnySnapshot, complete: boolean) {
    snapshot.value = data
    byName = complete ? new Map((data as LiveSnapshot).services.map((s) => [s.service, s])) : new Map()
    const cutoff = data.at - historySeconds
    for (const s of data.services) {
      let pts = history.get(s.service)
      if (!pts) history.set(s.service, (pts = []))
      const last = pts[pts.length - 1]
      if (last && last.t >= data.at) continue
      pts.push(toLivePoint(data.at, s))
      let drop = 0
      while (drop < pts.length && pts[drop]!.t < cutoff) drop++
      if (drop) pts.splice(0, drop)
    }
    tick.value++
  }

  function open() {
    if (!Impl || !running) return
    clearRetry()
    state.value = attempts.value === 0 && lastMessageAt.value === null ? 'connecting' : 'reconnecting'
    let sock: WebSocketLike
    try {
      const base = opts.url ?? wsUrl('/ws/metrics')
      sock = new Impl(`${base}${base.includes('?') ? '&' : '?'}${subscriptionQuery(subscription)}`)
      told = subscription
    } catch {
      scheduleRetry()
      return
    }
    ws = sock
    sock.onopen = () => {
      if (ws !== sock) return
      // "live" once data flows; until then we are still connecting.
      tell()
    }
    sock.onmessage = (ev: MessageEvent) => {
      if (ws !== sock) return
      let msg: LiveMessage
      try {
        msg = JSON.parse(String(ev.data)) as LiveMessage
      } catch {
        return
      }
      if (msg && (msg.type === 'snapshot' || msg.type === 'overview') && msg.data) {
        lastMessageAt.value = Date.now()
        attempts.value = 0
        state.value = 'live'
        handleSnapshot(msg.data, msg.type === 'snapshot')
      }
    }
    sock.onerror = () => {
      /* a close event follows */
    }
    sock.onclose = () => {
      if (ws !== sock) return
      ws = null
      if (running) scheduleRetry()
    }
  }

  /** Tell the open socket the current subscription, if it does not know it yet. */
  function tell() {
    if (!ws || told === null || sameSubscription(told, subscription)) return
    try {
      ws.send(JSON.stringify({ type: 'subscribe', ...subscription }))
      told = subscription
    } catch {
      /* not open yet: onopen tells it */
    }
  }

  function subscribe(sub: LiveSubscription) {
    if (sameSubscription(sub, subscription)) return
    subscription = sub
    tell()
  }

  function scheduleRetry() {
    if (!running) return
    clearRetry()
    const delay = backoffDelay(attempts.value, backoff, random)
    attempts.value++
    state.value = 'reconnecting'
    nextRetryAt.value = Date.now() + delay
    retryTimer = setTimeout(open, delay)
  }

  function checkStale() {
    if (!ws || state.value !== 'live' || lastMessageAt.value === null) return
    if (Date.now() - lastMessageAt.value > staleAfterMs) {
      const sock = ws
      ws = null
      try {
        sock.close()
      } catch {
        /* ignore */
      }
      scheduleRetry()
    }
  }

  function start() {
    if (running) return
    running = true
    if (!Impl) {
      state.value = 'offline'
      return
    }
    staleTimer = setInterval(checkStale, 1000)
    open()
  }

  function stop() {
    running = false
    clearRetry()
    if (staleTimer !== null) clearInterval(staleTimer)
    staleTimer = null
    const sock = ws
    ws = null
    sock?.close()
    state.value = 'offline'
  }

  function reconnect() {
    const sock = ws
    ws = null
    sock?.close()
    attempts.value = 0
    if (!running) {
      start()
      return
    }
    open()
  }

  if (opts.autoStart !== false) start()
  if (getCurrentScope()) onScopeDispose(stop)

  return {
    snapshot,
    state,
    attempts,
    nextRetryAt,
    lastMessageAt,
    tick,
    history,
    service: (name: string) => (snapshot.value ? byName.get(name) : undefined),
    subscribe,
    start,
    stop,
    reconnect,
  }
}

export const LIVE_KEY: InjectionKey<Live> = Symbol('modelmonitor-live')

export function injectLive(): Live {
  const live = inject(LIVE_KEY, null)
  if (!live) throw new Error('useLive() connection not provided: App.vue provides LIVE_KEY')
  return live
}
