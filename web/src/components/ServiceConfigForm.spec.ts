import { flushPromises, mount } from '@vue/test-utils'
import { describe, expect, it, vi } from 'vitest'
import { ApiError, ValidationError } from '../api/client'
import type { ConnectionTest, ServiceConfigInput } from '../api/types'
import { emptyServiceForm, formToConfig } from '../lib/serviceConfig'
import ServiceConfigForm from './ServiceConfigForm.vue'

const URL = '/api/v1/config/services'

function mountForm(save: (c: ServiceConfigInput) => Promise<unknown>, test: (c: ServiceConfigInput) => Promise<ConnectionTest> = vi.fn()) {
  return mount(ServiceConfigForm, { props: { initial: emptyServiceForm(), save, test } })
}

async function fill(w: ReturnType<typeof mountForm>) {
  await w.get('input[name=name]').setValue('ranker')
  await w.get('input[name=upstream]').setValue('http://127.0.0.1:7001')
  await w.get('input[name=path_prefix]').setValue('/rank')
}

describe('ServiceConfigForm', () => {
  it('sends every edited field and keeps the ones it does not edit', async () => {
    const save = vi.fn(async () => ({}))
    const w = mount(ServiceConfigForm, { props: { initial: emptyServiceForm(), save, test: vi.fn(), base: { tls: { verify: false } } } })
    await fill(w)
    await w.get('input[name=model_json_field]').setValue('model')
    await w.get('textarea[name=route_patterns]').setValue('/v1/{model}/predict\n\n /v2/x ')
    await w.get('input[name=propagate_trace]').setValue(true)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(save).toHaveBeenCalledWith({
      tls: { verify: false },
      name: 'ranker',
      upstream: 'http://127.0.0.1:7001',
      listen: null,
      path_prefix: '/rank',
      strip_prefix: true,
      route_patterns: ['/v1/{model}/predict', '/v2/x'],
      model_header: 'X-Model-Name',
      model_json_field: 'model',
      timeout_seconds: 60,
      connect_timeout_seconds: 5,
      preserve_host: false,
      propagate_trace: true,
    })
    expect(w.emitted('saved')).toHaveLength(1)
  })

  it('shows the API 422 errors next to the fields they name', async () => {
    const save = vi.fn(async () => {
      throw new ValidationError(URL, {
        detail: [
          { loc: ['body', 'upstream'], msg: 'URL scheme should be http or https', type: 'url_scheme' },
          { loc: ['body', 'timeout_seconds'], msg: 'Input should be greater than 0', type: 'greater_than' },
        ],
      })
    })
    const w = mountForm(save)
    await fill(w)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-field-error=upstream]').text()).toBe('URL scheme should be http or https')
    expect(w.get('[data-field-error=timeout_seconds]').text()).toBe('Input should be greater than 0')
    expect(w.find('[data-testid=service-form-error]').exists()).toBe(false)
    expect(w.emitted('saved')).toBeUndefined()
  })

  it('puts whole-service checks under the field their message names', async () => {
    const save = vi.fn(async () => {
      throw new ValidationError(URL, { detail: [{ loc: ['body'], msg: "Value error, path_prefix must start with '/' and not be '/' alone", type: 'value_error' }] })
    })
    const w = mountForm(save)
    await fill(w)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-field-error=path_prefix]').text()).toBe("path_prefix must start with '/' and not be '/' alone")
  })

  it('shows a 409 conflict as a message', async () => {
    const save = vi.fn(async () => {
      throw new ApiError("a service named 'ranker' exists already", 409, URL, { detail: "a service named 'ranker' exists already" })
    })
    const w = mountForm(save)
    await fill(w)
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(w.get('[data-testid=service-form-error]').text()).toBe("a service named 'ranker' exists already")
  })

  it('checks obvious mistakes before sending', async () => {
    const save = vi.fn(async () => ({}))
    const w = mountForm(save)
    await w.get('input[name=timeout_seconds]').setValue('-1')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(save).not.toHaveBeenCalled()
    expect(w.get('[data-field-error=name]').text()).toBe('Required')
    expect(w.find('[data-field-error=upstream]').exists()).toBe(true)
    expect(w.find('[data-field-error=timeout_seconds]').exists()).toBe(true)
  })

  it('tests the connection and shows status and latency, or the error', async () => {
    const test = vi
      .fn<(c: ServiceConfigInput) => Promise<ConnectionTest>>()
      .mockResolvedValueOnce({ reachable: true, status: 404, latency_ms: 1.5, error: '' })
      .mockResolvedValueOnce({ reachable: false, status: null, latency_ms: null, error: 'ConnectionRefusedError: [Errno 111] Connect call failed' })
    const w = mountForm(vi.fn(), test)
    await fill(w)
    await w.get('[data-testid=test-connection]').trigger('click')
    await flushPromises()
    expect(test.mock.calls[0]![0]).toEqual(formToConfig({ ...emptyServiceForm(), name: 'ranker', upstream: 'http://127.0.0.1:7001', path_prefix: '/rank' }))
    expect(w.get('[data-testid=connection-result]').text()).toBe('Reachable: HTTP 404 in 1.5 ms')
    await w.get('[data-testid=test-connection]').trigger('click')
    await flushPromises()
    expect(w.get('[data-testid=connection-result]').text()).toBe('Unreachable: ConnectionRefusedError: [Errno 111] Connect call failed')
  })

  it('sends a port of its own instead of a prefix', async () => {
    const save = vi.fn(async () => ({}))
    const w = mountForm(save)
    await fill(w)
    await w.get('input[name=mode][value=listen]').setValue(true)
    await w.get('input[name=listen]').setValue('127.0.0.1:9191')
    await w.get('form').trigger('submit')
    await flushPromises()
    expect(save).toHaveBeenCalledWith(expect.objectContaining({ listen: '127.0.0.1:9191', path_prefix: null }))
  })
})
