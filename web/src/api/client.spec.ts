import { describe, expect, it, vi } from 'vitest'
import { ApiClient, ApiError, NetworkError, NotFoundError, ValidationError, buildUrl, wsUrl } from './client'

function jsonResponse(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

describe('ApiClient', () => {
  it('builds query strings, skipping empty values', () => {
    expect(buildUrl('/x', { a: 1, b: undefined, c: '', d: false, e: true, f: 'a b' })).toBe('/x?a=1&e=true&f=a+b')
    expect(buildUrl('/x')).toBe('/x')
  })

  it('calls the historical endpoint with comma-separated metrics', async () => {
    const fetch = vi.fn().mockResolvedValue(jsonResponse(200, { series: [] }))
    await new ApiClient({ fetch }).historical({ service: 'svc', metrics: ['p50', 'p99'], start: '-15m', end: 'now', step: '60s' })
    expect(fetch.mock.calls[0]![0]).toBe('/api/v1/metrics/historical?service=svc&metric=p50%2Cp99&start=-15m&end=now&step=60s')
  })

  it('sends JSON bodies for alerting mutations and accepts 204', async () => {
    const fetch = vi.fn().mockResolvedValueOnce(jsonResponse(201, { id: 's1' })).mockResolvedValueOnce(new Response(null, { status: 204 }))
    const client = new ApiClient({ fetch })
    await client.createSilence({ matchers: [{ name: 'service', op: '=', value: 'x' }], starts_at: 'now', ends_at: 10 })
    expect(fetch.mock.calls[0]![0]).toBe('/api/v1/alerts/silences')
    expect(fetch.mock.calls[0]![1]).toMatchObject({ method: 'POST', headers: { 'Content-Type': 'application/json' } })
    expect(JSON.parse(fetch.mock.calls[0]![1].body)).toMatchObject({ starts_at: 'now', ends_at: 10 })
    await expect(client.deleteRule('a/b')).resolves.toBeUndefined()
    expect(fetch.mock.calls[1]![0]).toBe('/api/v1/alerts/rules/a%2Fb')
    expect(fetch.mock.calls[1]![1]).toMatchObject({ method: 'DELETE' })
  })

  it('throws typed errors', async () => {
    const notFound = new ApiClient({ fetch: vi.fn().mockImplementation(async () => jsonResponse(404, { detail: 'unknown service' })) })
    await expect(notFound.realtime('nope')).rejects.toBeInstanceOf(NotFoundError)
    await expect(notFound.realtime('nope')).rejects.toThrow('unknown service')

    const invalid = new ApiClient({
      fetch: vi.fn().mockImplementation(async () => jsonResponse(422, { detail: [{ loc: ['query', 'step'], msg: 'must be at least 60 s' }] })),
    })
    await expect(invalid.routes({ service: 's' })).rejects.toBeInstanceOf(ValidationError)
    await expect(invalid.routes({ service: 's' })).rejects.toThrow('step: must be at least 60 s')

    const boom = new ApiClient({ fetch: vi.fn().mockResolvedValue(new Response('oops', { status: 500 })) })
    const err = await boom.health().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).status).toBe(500)

    const offline = new ApiClient({ fetch: vi.fn().mockRejectedValue(new TypeError('Failed to fetch')) })
    await expect(offline.services()).rejects.toBeInstanceOf(NetworkError)
  })

  it('derives the WebSocket URL from the page', () => {
    expect(wsUrl('/ws/metrics', { protocol: 'http:', host: 'h:8000' })).toBe('ws://h:8000/ws/metrics')
    expect(wsUrl('/ws/metrics', { protocol: 'https:', host: 'h' })).toBe('wss://h/ws/metrics')
  })
})
