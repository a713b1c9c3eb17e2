import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import UsersPanel from './UsersPanel.vue'

describe('UsersPanel', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('lists users and names the field the server refused', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async (_url: string, init?: RequestInit) => {
        if (init?.method === 'POST') {
          return Response.json(
            { detail: [{ loc: ['body', 'password'], msg: 'password must be at least 12 characters', type: 'value_error' }] },
            { status: 422 },
          )
        }
        return Response.json({ users: [{ name: 'ada', role: 'admin', created_at: 1_700_000_000, updated_at: 1_700_000_000 }] })
      }),
    )
    const w = mount(UsersPanel)
    await flushPromises()
    expect(w.get('[data-user=ada]').text()).toContain('ada')
    await w.get('input[name=new-user-name]').setValue('bo')
    await w.get('input[name=new-user-password]').setValue('short')
    await w.get('[data-testid=add-user]').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid=users-problem]').text()).toBe('body.password: password must be at least 12 characters')
  })
})
