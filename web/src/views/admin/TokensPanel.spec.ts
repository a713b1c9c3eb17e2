import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import TokensPanel from './TokensPanel.vue'

const info = { id: 't1', name: 'grafana', role: 'viewer', created_at: 1_700_000_000, created_by: 'ada', expires_at: null, last_used_at: null }

describe('TokensPanel', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows a new token once, and lists tokens without secrets', async () => {
    const listed: (typeof info)[] = []
    const fetch = vi.fn(async (_url: string, init?: RequestInit) => {
      if (init?.method === 'POST') {
        expect(JSON.parse(String(init.body))).toEqual({ name: 'grafana', role: 'viewer', expires_in: '90d' })
        listed.push(info)
        return Response.json({ token: 'mmt_secret-value', info }, { status: 201 })
      }
      return Response.json({ tokens: listed })
    })
    vi.stubGlobal('fetch', fetch)
    const w = mount(TokensPanel)
    await flushPromises()
    await w.get('input[name=new-token-name]').setValue('grafana')
    await w.get('[data-testid=create-token]').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid=new-token-secret]').text()).toBe('mmt_secret-value')
    expect(w.get('[data-token=grafana]').text()).not.toContain('mmt_')
    await w.get('[data-testid=new-token] button').trigger('click')
    expect(w.find('[data-testid=new-token]').exists()).toBe(false)
    expect(w.text()).not.toContain('mmt_secret-value')
  })
})
