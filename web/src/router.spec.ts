import { describe, expect, it, vi, afterEach } from 'vitest'
import { authorize, router } from './router'
import { setAuthState, type AuthState } from './lib/session'

const state = (user: AuthState['user'], enabled = true): AuthState => ({ enabled, methods: ['password'], oidc_label: null, user, csrf_token: null })

describe('router authorization', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('sends the signed-out to the login page, remembering where they were going', async () => {
    setAuthState(state(null))
    expect(await authorize(router.resolve('/alerts?tab=rules'))).toEqual({ name: 'login', query: { next: '/alerts?tab=rules' } })
    expect(await authorize(router.resolve('/login'))).toBe(true)
  })

  it('keeps viewers and editors out of the admin pages', async () => {
    setAuthState(state({ name: 'e', role: 'editor', method: 'session' }))
    expect(await authorize(router.resolve('/admin'))).toEqual({ name: 'overview' })
    expect(await authorize(router.resolve('/audit'))).toEqual({ name: 'overview' })
    expect(await authorize(router.resolve('/alerts'))).toBe(true)
    setAuthState(state({ name: 'a', role: 'admin', method: 'session' }))
    expect(await authorize(router.resolve('/admin'))).toBe(true)
  })

  it('lets everyone in when authentication is off', async () => {
    setAuthState(null)
    vi.stubGlobal('fetch', vi.fn(async () => Response.json(state({ name: 'local', role: 'admin', method: 'none' }, false))))
    expect(await authorize(router.resolve('/admin'))).toBe(true)
  })
})
