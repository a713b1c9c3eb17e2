import { flushPromises, mount } from '@vue/test-utils'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { AlertRule } from '../api/types'
import { apiFieldErrors, emptyRuleForm, formToRuleInput, readableSummary, ruleToForm, validateRuleForm } from '../lib/alertRules'
import { ValidationError } from '../api/client'
import RuleForm from './RuleForm.vue'

const RULE: AlertRule = {
  id: 'r1', name: 'slow', kind: 'threshold', enabled: true, service: 'iris', route: null, severity: 'critical', labels: { team: 'ml' },
  summary: '', channels: ['email'], for: 120, keep_firing_for: 0, repeat_interval: 14400, source: 'api', created_at: 1, updated_at: 1,
  metric: 'latency_p95', comparator: '>', threshold: 0.25, window: '1m', min_requests: 10,
}

function mountForm(rule: AlertRule | null = null) {
  return mount(RuleForm, { props: { rule, services: ['iris', 'demo'], channels: ['email', 'ops-hook'] } })
}

describe('rule form conversion', () => {
  it('converts ms and % to the API units and back', () => {
    const f = { ...emptyRuleForm(), name: 'errs', threshold: '1', metric: 'error_rate' as const, for: '0s', min_requests: '1' }
    expect(formToRuleInput(f)).toMatchObject({ threshold: 0.01, for: 0, min_requests: 1, channels: null, route: null })
    expect(formToRuleInput({ ...f, metric: 'latency_p99', threshold: '250' }).threshold).toBe(0.25)
    const back = ruleToForm(RULE)
    expect(back).toMatchObject({ threshold: '250', for: '2m', repeat_interval: '4h', labels: 'team=ml', allChannels: false, channels: 'email' })
  })

  it('shows the automatic summary with units', () => {
    expect(readableSummary('error_rate > 0.01 over 10s')).toBe('Error rate > 1 % over 10s')
    expect(readableSummary('latency_p95 >= 0.25 over 1m')).toBe('Latency p95 >= 250 ms over 1m')
    expect(readableSummary('my own words')).toBe('my own words')
  })

  it('catches obvious mistakes', () => {
    const e = validateRuleForm({ ...emptyRuleForm(), name: 'bad!', threshold: '150', for: 'soon', min_requests: '-1', labels: 'oops' })
    expect(Object.keys(e).sort()).toEqual(['for', 'labels', 'min_requests', 'name', 'threshold'])
    expect(e.threshold).toContain('100 %')
  })

  it('maps 422 details to the field named last in loc', () => {
    const err = new ValidationError('/api/v1/alerts/rules', {
      detail: [
        { loc: ['body', 'window'], msg: 'window must be one of 10s, 1m, 5m', type: 'value_error' },
        { loc: ['body', 'channels', 0], msg: "no channel named 'x'", type: 'value_error' },
        { loc: ['body', 'kind'], msg: 'bad kind', type: 'value_error' },
      ],
    })
    expect(apiFieldErrors(err, ['window', 'channels'] as const)).toEqual({
      window: 'window must be one of 10s, 1m, 5m',
      channels: "no channel named 'x'",
      general: 'kind: bad kind',
    })
  })
})

describe('RuleForm', () => {
  afterEach(() => vi.unstubAllGlobals())

  it('shows client-side errors without calling the API', async () => {
    const fetch = vi.fn()
    vi.stubGlobal('fetch', fetch)
    const w = mountForm()
    await w.get('form').trigger('submit')
    expect(w.get('[data-field-error=name]').text()).toBe('Required')
    expect(w.get('[data-field-error=threshold]').text()).toBe('Required')
    expect(fetch).not.toHaveBeenCalled()
  })

  it('shows the unit of the chosen metric', async () => {
    const w = mountForm()
    expect(w.get('[data-testid=threshold-unit]').text()).toBe('%')
    await w.get('select[name=metric]').setValue('latency_p99')
    expect(w.get('[data-testid=threshold-unit]').text()).toBe('ms')
  })

  it('posts the rule in API units and emits it', async () => {
    const fetch = vi.fn(async (_url: string, init: RequestInit) => Response.json({ ...RULE, ...JSON.parse(init.body as string), id: 'new' }, { status: 201 }))
    vi.stubGlobal('fetch', fetch)
    const w = mountForm()
    await w.get('input[name=name]').setValue('errors')
    await w.get('select[name=service]').setValue('demo')
    await w.get('input[name=threshold]').setValue('1')
    await w.get('select[name=window]').setValue('10s')
    await w.get('input[name=min_requests]').setValue('1')
    await w.get('form').trigger('submit')
    await flushPromises()
    const [url, init] = fetch.mock.calls[0]!
    expect(url).toBe('/api/v1/alerts/rules')
    expect(init.method).toBe('POST')
    expect(JSON.parse(init.body as string)).toMatchObject({ name: 'errors', service: 'demo', metric: 'error_rate', threshold: 0.01, window: '10s', min_requests: 1, for: 0 })
    expect(w.emitted('saved')?.[0]?.[0]).toMatchObject({ id: 'new' })
  })

  it('shows 422 errors next to the field they name', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () =>
        Response.json(
          { detail: [{ loc: ['body', 'name'], msg: 'a rule named "errors" exists', type: 'value_error' }, { loc: ['body', 'channels', 0], msg: 'no channel x', type: 'value_error' }] },
          { status: 422 },
        ),
      ),
    )
    const w = mountForm(RULE)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-field-error=name]').text()).toBe('a rule named "errors" exists')
    expect(w.get('[data-field-error=channels]').text()).toBe('no channel x')
    expect(w.emitted('saved')).toBeUndefined()
  })

  it('edits with PUT', async () => {
    const fetch = vi.fn(async (_url: string, _init: RequestInit) => Response.json(RULE))
    vi.stubGlobal('fetch', fetch)
    const w = mountForm(RULE)
    expect((w.get('input[name=threshold]').element as HTMLInputElement).value).toBe('250')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(fetch.mock.calls[0]![0]).toBe('/api/v1/alerts/rules/r1')
    expect((fetch.mock.calls[0]![1] as RequestInit).method).toBe('PUT')
  })
})
