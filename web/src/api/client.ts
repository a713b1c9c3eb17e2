import type {
  AlertHistoryResponse,
  AlertRule,
  AlertsResponse,
  CatalogEntry,
  CatalogResponse,
  ConnectionTest,
  ServiceConfigInput,
  Channel,
  ChannelsResponse,
  DeliveriesResponse,
  Delivery,
  DeliveryStatus,
  DimensionList,
  RuleInput,
  RulesResponse,
  Silence,
  SilenceInput,
  SilencesResponse,
  ErrorBody,
  Health,
  HistoricalMetric,
  HistoricalResponse,
  LiveSnapshot,
  RequestsResponse,
  RoutesResponse,
  ServicesResponse,
} from './types'

/** Base class of every error the client throws. */
export class ApiError extends Error {
  constructor(
    message: string,
    /** HTTP status, 0 for network errors. */
    readonly status: number,
    readonly url: string,
    readonly body?: ErrorBody,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

/** The server could not be reached (or the request was aborted). */
export class NetworkError extends ApiError {
  constructor(url: string, cause: unknown) {
    super(`Cannot reach the API (${cause instanceof Error ? cause.message : String(cause)})`, 0, url)
    this.name = 'NetworkError'
  }
}

/** 404: the resource (service, endpoint) does not exist. */
export class NotFoundError extends ApiError {
  constructor(url: string, body?: ErrorBody) {
    super(detailMessage(body) ?? 'Not found', 404, url, body)
    this.name = 'NotFoundError'
  }
}

/** 422: bad parameters. */
export class ValidationError extends ApiError {
  constructor(url: string, body?: ErrorBody) {
    super(detailMessage(body) ?? 'Invalid parameters', 422, url, body)
    this.name = 'ValidationError'
  }
}

export function detailMessage(body: ErrorBody | undefined): string | undefined {
  if (!body || body.detail === undefined) return undefined
  if (typeof body.detail === 'string') return body.detail
  if (Array.isArray(body.detail)) {
    return body.detail
      .map((d) => `${d.loc.filter((l) => l !== 'query').join('.')}: ${d.msg}`)
      .join('; ')
  }
  return undefined
}

type Query = Record<string, string | number | boolean | null | undefined>

export function buildUrl(path: string, query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '' || v === false) continue
    params.set(k, String(v))
  }
  const qs = params.toString()
  return qs ? `${path}?${qs}` : path
}

export interface ClientOptions {
  baseUrl?: string
  fetch?: typeof fetch
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export class ApiClient {
  private readonly baseUrl: string
  private readonly fetchImpl: typeof fetch
  /** The session's CSRF token, sent with every write (the session cookie alone is refused). */
  csrf: () => string | null = () => null
  /** Called on 401 (not signed in, or the session expired). */
  onUnauthorized: ((url: string) => void) | null = null

  constructor(opts: ClientOptions = {}) {
    this.baseUrl = opts.baseUrl ?? ''
    this.fetchImpl = opts.fetch ?? ((...args) => fetch(...args))
  }

  get<T>(path: string, query: Query = {}, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, query, undefined, signal)
  }

  /** Any method; a JSON `body` is sent when given; 204 answers resolve to undefined. */
  async request<T>(method: string, path: string, query: Query = {}, body?: unknown, signal?: AbortSignal): Promise<T> {
    const url = this.baseUrl + buildUrl(path, query)
    const headers: Record<string, string> = { Accept: 'application/json' }
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    const csrf = SAFE_METHODS.has(method) ? null : this.csrf()
    if (csrf) headers['X-CSRF-Token'] = csrf
    let res: Response
    try {
      res = await this.fetchImpl(url, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) })
    } catch (e) {
      throw new NetworkError(url, e)
    }
    if (!res.ok) {
      let body: ErrorBody | undefined
      try {
        body = (await res.json()) as ErrorBody
      } catch {
        body = undefined
      }
      if (res.status === 401) this.onUnauthorized?.(url)
      if (res.status === 404) throw new NotFoundError(url, body)
      if (res.status === 422) throw new ValidationError(url, body)
      throw new ApiError(detailMessage(body) ?? `HTTP ${res.status}`, res.status, url, body)
    }
    if (res.status === 204) return undefined as T
    return (await res.json()) as T
  }

  health(signal?: AbortSignal): Promise<Health> {
    return this.get('/api/v1/health', {}, signal)
  }

  services(signal?: AbortSignal): Promise<ServicesResponse> {
    return this.get('/api/v1/services', {}, signal)
  }

  realtime(service?: string, signal?: AbortSignal): Promise<LiveSnapshot> {
    return this.get('/api/v1/metrics/realtime', { service }, signal)
  }

  historical(
    q: {
      service: string
      metrics: HistoricalMetric[]
      route?: string
      start?: string | number
      end?: string | number
      step?: string
      /** Add anomaly scores and expected bands. */
      anomaly?: boolean
    },
    signal?: AbortSignal,
  ): Promise<HistoricalResponse> {
    return this.get(
      '/api/v1/metrics/historical',
      {
        service: q.service,
        route: q.route,
        metric: q.metrics.join(','),
        start: q.start,
        end: q.end,
        step: q.step,
        anomaly: q.anomaly,
      },
      signal,
    )
  }

  routes(q: { service: string; start?: string | number; end?: string | number }, signal?: AbortSignal): Promise<RoutesResponse> {
    return this.get('/api/v1/routes', q, signal)
  }

  /** GET /api/v1/models or /api/v1/consumers: per-model or per-consumer totals over a range. */
  dimensions(
    by: 'model' | 'consumer',
    q: { service: string; start?: string | number; end?: string | number; model?: string; consumer?: string },
    signal?: AbortSignal,
  ): Promise<DimensionList> {
    return this.get(by === 'model' ? '/api/v1/models' : '/api/v1/consumers', q, signal)
  }

  requests(
    q: {
      service?: string
      route?: string
      model?: string
      consumer?: string
      status_class?: string
      errors_only?: boolean
      min_latency_ms?: number
      /** Not in the written contract, but supported by the backend: bound the feed to a range. */
      start?: string | number
      end?: string | number
      limit?: number
      cursor?: string
    },
    signal?: AbortSignal,
  ): Promise<RequestsResponse> {
    return this.get('/api/v1/requests', q, signal)
  }

  alerts(signal?: AbortSignal, q: { resolved_within?: string; service?: string } = {}): Promise<AlertsResponse> {
    return this.get('/api/v1/alerts', q, signal)
  }

  alertHistory(
    q: { start?: string | number; end?: string | number; service?: string; rule_id?: string; limit?: number } = {},
    signal?: AbortSignal,
  ): Promise<AlertHistoryResponse> {
    return this.get('/api/v1/alerts/history', q, signal)
  }

  rules(signal?: AbortSignal): Promise<RulesResponse> {
    return this.get('/api/v1/alerts/rules', {}, signal)
  }

  createRule(rule: RuleInput): Promise<AlertRule> {
    return this.request('POST', '/api/v1/alerts/rules', {}, rule)
  }

  updateRule(id: string, rule: RuleInput): Promise<AlertRule> {
    return this.request('PUT', `/api/v1/alerts/rules/${encodeURIComponent(id)}`, {}, rule)
  }

  deleteRule(id: string): Promise<void> {
    return this.request('DELETE', `/api/v1/alerts/rules/${encodeURIComponent(id)}`)
  }

  silences(includeExpired = false, signal?: AbortSignal): Promise<SilencesResponse> {
    return this.get('/api/v1/alerts/silences', { include_expired: includeExpired }, signal)
  }

  createSilence(silence: SilenceInput): Promise<Silence> {
    return this.request('POST', '/api/v1/alerts/silences', {}, silence)
  }

  updateSilence(id: string, silence: SilenceInput): Promise<Silence> {
    return this.request('PUT', `/api/v1/alerts/silences/${encodeURIComponent(id)}`, {}, silence)
  }

  deleteSilence(id: string): Promise<void> {
    return this.request('DELETE', `/api/v1/alerts/silences/${encodeURIComponent(id)}`)
  }

  deliveries(q: { channel?: string; status?: DeliveryStatus; limit?: number } = {}, signal?: AbortSignal): Promise<DeliveriesResponse> {
    return this.get('/api/v1/alerts/deliveries', q, signal)
  }

  channels(signal?: AbortSignal): Promise<ChannelsResponse> {
    return this.get('/api/v1/alerts/channels', {}, signal)
  }

  setChannelEnabled(name: string, enabled: boolean): Promise<Channel> {
    return this.request('POST', `/api/v1/alerts/channels/${encodeURIComponent(name)}/${enabled ? 'enable' : 'disable'}`)
  }

  catalog(signal?: AbortSignal): Promise<CatalogResponse> {
    return this.get('/api/v1/config/services', {}, signal)
  }

  addService(config: ServiceConfigInput): Promise<CatalogEntry> {
    return this.request('POST', '/api/v1/config/services', {}, config)
  }

  replaceService(name: string, config: ServiceConfigInput): Promise<CatalogEntry> {
    return this.request('PUT', `/api/v1/config/services/${encodeURIComponent(name)}`, {}, config)
  }

  deleteService(name: string): Promise<void> {
    return this.request('DELETE', `/api/v1/config/services/${encodeURIComponent(name)}`)
  }

  /** Dry run: can the proxy reach this upstream? Nothing is stored. */
  testService(config: ServiceConfigInput): Promise<ConnectionTest> {
    return this.request('POST', '/api/v1/config/services/test', {}, config)
  }

  testChannel(name: string): Promise<Delivery> {
    return this.request('POST', `/api/v1/alerts/channels/${encodeURIComponent(name)}/test`)
  }
}

export const api = new ApiClient()

/** ws:// or wss:// URL for a path on the page's own origin. */
export function wsUrl(path: string, loc: Pick<Location, 'protocol' | 'host'> = window.location): string {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:'
  return `${proto}//${loc.host}${path}`
}
