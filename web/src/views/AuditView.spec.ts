import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import AuditView from './AuditView.vue'

const entry = (id: number, action: string, outcome = 'ok 200') => ({
  id,
  at: 1_700_000_000 + id,
  actor: 'token:editor',
  role: 'editor',
  action,
  target: 'r1',
  source: '127.0.0.1',
  outcome,
  before: { threshold: 1 },
  after: { threshold: 2 },
})

describe('AuditView', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('lists changes newest first and pages to older ones', async () => {
    const fetch = vi.fn(async (url: string) =>
      url.includes('before_id=')
        ? Response.json({ entries: [entry(1, 'create_rule')], next_before_id: null })
        : Response.json({ entries: [entry(3, 'update_rule'), entry(2, 'delete_rule', 'denied 403')], next_before_id: 2 }),
    )
    vi.stubGlobal('fetch', fetch)
    const w = mount(AuditView)
    await flushPromises()
    const rows = w.findAll('[data-testid=audit-row]')
    expect(rows.map((r) => r.text().includes('update_rule'))).toEqual([true, false])
    expect(rows[0]!.text()).toContain('{"threshold":2}')
    expect(rows[1]!.text()).toContain('denied 403')
    await w.get('[data-testid=audit-more]').trigger('click')
    await flushPromises()
    expect(w.findAll('[data-testid=audit-row]')).toHaveLength(3)
    expect(w.find('[data-testid=audit-more]').exists()).toBe(false)
    w.unmount()
  })
})
