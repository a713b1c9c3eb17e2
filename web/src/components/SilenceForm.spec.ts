import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { emptySilenceForm, formToSilenceInput, validateSilenceForm } from '../lib/silences'
import SilenceForm from './SilenceForm.vue'

describe('silence form logic', () => {
  it('needs a matcher, valid regexes and a positive duration', () => {
    expect(validateSilenceForm({ ...emptySilenceForm(), matchers: [{ name: '', op: '=', value: '' }], duration: '0' })).toMatchObject({
      matchers: 'Add at least one matcher',
      duration: expect.any(String),
    })
    expect(validateSilenceForm({ ...emptySilenceForm(), matchers: [{ name: 'rule', op: '=~', value: '(' }] }).matchers).toContain('regular expression')
  })

  it('starts now and ends after the duration', () => {
    const body = formToSilenceInput({ ...emptySilenceForm([{ name: 'service', op: '=', value: 'demo' }]), duration: '2h', comment: 'deploy' }, 1000)
    expect(body).toEqual({ matchers: [{ name: 'service', op: '=', value: 'demo' }], starts_at: 'now', ends_at: 1000 + 7200, comment: 'deploy', created_by: '' })
  })
})

describe('SilenceForm', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('creates a silence with the prefilled matchers', async () => {
    const fetch = vi.fn(async (_u: string, init: RequestInit) => Response.json({ id: 's1', created_at: 1, created_by: '', comment: '', ...JSON.parse(init.body as string), starts_at: 1 }, { status: 201 }))
    vi.stubGlobal('fetch', fetch)
    const w = mount(SilenceForm, { props: { initial: [{ name: 'service', op: '=', value: 'demo' }] } })
    expect((w.get('input[name=matcher-value-0]').element as HTMLInputElement).value).toBe('demo')
    await w.get('input[name=comment]').setValue('deploy')
    await w.get('form').trigger('submit')
    await flushPromises()
    const init = fetch.mock.calls[0]![1]
    expect(init.method).toBe('POST')
    expect(JSON.parse(init.body as string)).toMatchObject({ matchers: [{ name: 'service', op: '=', value: 'demo' }], starts_at: 'now', comment: 'deploy' })
    expect(w.emitted('saved')?.[0]?.[0]).toMatchObject({ id: 's1' })
  })

  it('shows client errors and 422 errors by field', async () => {
    const fetch = vi.fn(async () => Response.json({ detail: [{ loc: ['body', 'matchers', 0, 'value'], msg: 'bad regex', type: 'value_error' }, { loc: ['body'], msg: 'ends_at must be after starts_at', type: 'value_error' }] }, { status: 422 }))
    vi.stubGlobal('fetch', fetch)
    const w = mount(SilenceForm)
    await w.get('input[name=duration]').setValue('never')
    await w.get('form').trigger('submit')
    expect(w.find('[data-field-error=duration]').exists()).toBe(true)
    expect(w.get('[data-field-error=matchers]').text()).toBe('Give "service" a value')
    expect(fetch).not.toHaveBeenCalled()

    await w.get('input[name=matcher-value-0]').setValue('demo')
    await w.get('input[name=duration]').setValue('1h')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-field-error=matchers]').text()).toBe('bad regex')
    expect(w.get('[data-testid=form-error]').text()).toBe('ends_at must be after starts_at')
  })
})
