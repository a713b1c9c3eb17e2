import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { CatalogEntry } from '../api/types'
import { setAuthState } from '../lib/session'
import { emptyServiceForm, formToConfig } from '../lib/serviceConfig'
import ServicesConfigView from './ServicesConfigView.vue'

function entry(name: string, source: 'config' | 'api', extra: Partial<CatalogEntry['config']> = {}): CatalogEntry {
  const config = { ...formToConfig({ ...emptyServiceForm(), name, upstream: `http://127.0.0.1:700${name.length}` }), ...extra }
  return { name, source, read_only: source === 'config', config, updated_at: source === 'api' ? 1_700_000_000 : null }
}

function backend(services: CatalogEntry[]) {
  const calls: { method: string; url: string; body: unknown }[] = []
  const fetch = vi.fn(async (url: string, init?: RequestInit) => {
    const method = init?.method ?? 'GET'
    calls.push({ method, url, body: init?.body ? JSON.parse(String(init.body)) : undefined })
    if (method === 'GET') return Response.json({ services })
    if (method === 'DELETE') {
      services = services.filter((s) => !url.endsWith(`/${s.name}`))
      return new Response(null, { status: 204 })
    }
    if (method === 'POST') {
      const body = JSON.parse(String(init!.body)) as CatalogEntry['config']
      const added = { ...entry(body.name, 'api'), config: body }
      services = [...services, added]
      return Response.json(added, { status: 201 })
    }
    if (method === 'PUT') {
      const body = JSON.parse(String(init!.body)) as CatalogEntry['config']
      services = services.map((s) => (s.name === body.name ? { ...s, config: body } : s))
      return Response.json(services.find((s) => s.name === body.name))
    }
    return Response.json({ detail: 'unexpected' }, { status: 500 })
  })
  vi.stubGlobal('fetch', fetch)
  return calls
}

const demo = entry('demo', 'config', { path_prefix: null })
const ranker = entry('ranker', 'api', { path_prefix: '/rank' })

describe('ServicesConfigView', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('lists every service with its source; config-file ones are read-only', async () => {
    backend([demo, ranker])
    const w = mount(ServicesConfigView)
    await flushPromises()
    const demoRow = w.get('[data-service=demo]')
    expect(demoRow.text()).toContain('config file')
    expect(demoRow.find('[data-testid=read-only-badge]').exists()).toBe(true)
    expect(demoRow.find('[data-testid=edit-service]').exists()).toBe(false)
    const rankerRow = w.get('[data-service=ranker]')
    expect(rankerRow.text()).toContain('API')
    expect(rankerRow.text()).toContain('/rank/*')
    expect(rankerRow.find('[data-testid=read-only-badge]').exists()).toBe(false)
    expect(rankerRow.find('[data-testid=edit-service]').exists()).toBe(true)
    expect(rankerRow.find('[data-testid=delete-service]').exists()).toBe(true)
  })

  it('shows a viewer the list without edit controls', async () => {
    setAuthState({ enabled: true, methods: ['password'], oidc_label: null, user: { name: 'vic', role: 'viewer', method: 'session' }, csrf_token: 'x' })
    backend([demo, ranker])
    const w = mount(ServicesConfigView)
    await flushPromises()
    expect(w.find('[data-service=ranker]').exists()).toBe(true)
    expect(w.find('[data-testid=new-service]').exists()).toBe(false)
    expect(w.find('[data-testid=edit-service]').exists()).toBe(false)
    expect(w.find('[data-testid=delete-service]').exists()).toBe(false)
  })

  it('adds a service and shows it in the list', async () => {
    const calls = backend([demo])
    const w = mount(ServicesConfigView)
    await flushPromises()
    await w.get('[data-testid=new-service]').trigger('click')
    await w.get('input[name=name]').setValue('fresh')
    await w.get('input[name=upstream]').setValue('http://127.0.0.1:7100')
    await w.get('input[name=path_prefix]').setValue('/fresh')
    await w.get('[data-testid=service-form]').trigger('submit')
    await flushPromises()
    const post = calls.find((c) => c.method === 'POST')
    expect(post?.url).toBe('/api/v1/config/services')
    expect(post?.body).toMatchObject({ name: 'fresh', upstream: 'http://127.0.0.1:7100', path_prefix: '/fresh' })
    expect(w.find('[data-testid=service-form]').exists()).toBe(false)
    expect(w.get('[data-service=fresh]').text()).toContain('/fresh/*')
  })

  it('edits a service, keeping the settings the form does not show', async () => {
    const calls = backend([{ ...ranker, config: { ...ranker.config, sampling: { rate: 0.5 } } }])
    const w = mount(ServicesConfigView)
    await flushPromises()
    await w.get('[data-service=ranker] [data-testid=edit-service]').trigger('click')
    expect((w.get('input[name=name]').element as HTMLInputElement).readOnly).toBe(true)
    expect((w.get('input[name=path_prefix]').element as HTMLInputElement).value).toBe('/rank')
    await w.get('input[name=upstream]').setValue('http://127.0.0.1:7200')
    await w.get('[data-testid=service-form]').trigger('submit')
    await flushPromises()
    const put = calls.find((c) => c.method === 'PUT')
    expect(put?.url).toBe('/api/v1/config/services/ranker')
    expect(put?.body).toMatchObject({ name: 'ranker', upstream: 'http://127.0.0.1:7200', path_prefix: '/rank', sampling: { rate: 0.5 } })
    expect(w.get('[data-service=ranker]').text()).toContain('http://127.0.0.1:7200')
  })

  it('deletes only after confirmation', async () => {
    const calls = backend([demo, ranker])
    const confirm = vi.fn().mockReturnValueOnce(false).mockReturnValueOnce(true)
    vi.stubGlobal('confirm', confirm)
    const w = mount(ServicesConfigView)
    await flushPromises()
    await w.get('[data-service=ranker] [data-testid=delete-service]').trigger('click')
    await flushPromises()
    expect(calls.filter((c) => c.method === 'DELETE')).toEqual([])
    await w.get('[data-service=ranker] [data-testid=delete-service]').trigger('click')
    await flushPromises()
    expect(calls.filter((c) => c.method === 'DELETE').map((c) => c.url)).toEqual(['/api/v1/config/services/ranker'])
    expect(w.find('[data-service=ranker]').exists()).toBe(false)
  })
})
