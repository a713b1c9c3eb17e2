import { describe, expect, it } from 'vitest'
import { can, roleAtLeast, safeNext, setAuthState } from './session'

describe('session', () => {
  it('orders roles: each includes the ones below it', () => {
    expect(roleAtLeast('admin', 'editor')).toBe(true)
    expect(roleAtLeast('editor', 'editor')).toBe(true)
    expect(roleAtLeast('viewer', 'editor')).toBe(false)
    expect(roleAtLeast('metrics', 'viewer')).toBe(false)
    expect(roleAtLeast(null, 'viewer')).toBe(false)
  })

  it('answers can() for the signed-in user, and nothing when signed out', () => {
    setAuthState({ enabled: true, methods: ['password'], oidc_label: null, user: { name: 'v', role: 'viewer', method: 'session' }, csrf_token: 'c' })
    expect(can('viewer')).toBe(true)
    expect(can('editor')).toBe(false)
    setAuthState({ enabled: true, methods: ['password'], oidc_label: null, user: null, csrf_token: null })
    expect(can('viewer')).toBe(false)
  })

  it('keeps the page after login on this site', () => {
    expect(safeNext('/alerts?tab=rules')).toBe('/alerts?tab=rules')
    for (const bad of [undefined, '', 'https://evil.example', '//evil.example', '/\\evil', '/login?next=/x']) {
      expect(safeNext(bad)).toBe('/')
    }
  })
})
