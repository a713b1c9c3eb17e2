import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createMemoryHistory, createRouter } from 'vue-router'
import { session } from '../lib/session'
import LoginView from './LoginView.vue'

const signedOut = { enabled: true, methods: ['password', 'oidc'], oidc_label: 'Okta', user: null, csrf_token: null }
const signedIn = { ...signedOut, user: { name: 'eve', role: 'editor', method: 'session' }, csrf_token: 'csrf-1' }

async function mountAt(path: string) {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: '/login', component: LoginView },
      { path: '/:rest(.*)*', component: { template: '<p>page</p>' } },
    ],
  })
  await router.push(path)
  const w = mount(LoginView, { global: { plugins: [router] } })
  await flushPromises()
  return { w, router }
}

describe('LoginView', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('signs in and goes where the user was headed', async () => {
    const fetch = vi.fn(async (url: string, init?: RequestInit) => {
      if (url.endsWith('/auth/login')) {
        expect(JSON.parse(String(init?.body))).toEqual({ username: 'eve', password: 'a long password' })
        return Response.json(signedIn)
      }
      return Response.json(signedOut)
    })
    vi.stubGlobal('fetch', fetch)
    const { w, router } = await mountAt('/login?next=/alerts%3Ftab%3Drules')
    await w.get('[data-testid=login-username]').setValue('eve')
    await w.get('[data-testid=login-password]').setValue('a long password')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(router.currentRoute.value.fullPath).toBe('/alerts?tab=rules')
    expect(session.state?.user?.name).toBe('eve')
    expect(session.state?.csrf_token).toBe('csrf-1')
  })

  it('says when the password is wrong, and offers single sign-on', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) =>
        url.endsWith('/auth/login') ? Response.json({ detail: 'wrong user name or password' }, { status: 401 }) : Response.json(signedOut),
      ),
    )
    const { w, router } = await mountAt('/login?next=/system&expired=1')
    expect(w.get('[data-testid=session-expired]').text()).toContain('expired')
    expect(w.get('[data-testid=login-oidc]').attributes('href')).toBe('/api/v1/auth/oidc/login?next=%2Fsystem')
    expect(w.get('[data-testid=login-oidc]').text()).toContain('Okta')
    await w.get('[data-testid=login-username]').setValue('eve')
    await w.get('[data-testid=login-password]').setValue('nope nope nope')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid=login-error]').text()).toBe('Wrong user name or password.')
    expect(router.currentRoute.value.path).toBe('/login')
  })

  it('leaves at once when authentication is off', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Response.json({ ...signedOut, enabled: false, user: { name: 'local', role: 'admin', method: 'none' } })))
    const { router } = await mountAt('/login?next=/system')
    expect(router.currentRoute.value.path).toBe('/system')
  })
})
