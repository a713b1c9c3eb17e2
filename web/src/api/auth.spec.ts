import { describe, expect, it, vi } from 'vitest'
import { ApiClient } from './client'

describe('ApiClient and the session', () => {
  it('sends the CSRF token with writes only, and reports a 401', async () => {
    const seen: Record<string, string | undefined>[] = []
    const fetch = vi.fn(async (_url: string, init?: RequestInit) => {
      seen.push({ ...(init?.headers as Record<string, string>) })
      return seen.length === 3 ? Response.json({ detail: 'authentication required' }, { status: 401 }) : Response.json({})
    })
    const client = new ApiClient({ fetch: fetch as unknown as typeof globalThis.fetch })
    client.csrf = () => 'csrf-1'
    const unauthorized = vi.fn()
    client.onUnauthorized = unauthorized
    await client.get('/api/v1/services')
    await client.request('POST', '/api/v1/alerts/silences', {}, { comment: 'x' })
    await expect(client.get('/api/v1/services')).rejects.toMatchObject({ status: 401 })
    expect(seen[0]!['X-CSRF-Token']).toBeUndefined()
    expect(seen[1]!['X-CSRF-Token']).toBe('csrf-1')
    expect(unauthorized).toHaveBeenCalledWith('/api/v1/services')
  })
})
