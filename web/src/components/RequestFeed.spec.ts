import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { RequestRecord } from '../api/types'
import RequestFeed from './RequestFeed.vue'

const base: RequestRecord = {
  id: '1',
  start: 1_800_000_000,
  service: 'svc',
  method: 'POST',
  route: '/v1/chat',
  path: '/v1/chat?x=1',
  status: 200,
  latency_seconds: 0.0421,
  ttfb_seconds: 0.01,
  request_bytes: 10,
  response_bytes: 20,
  error: '',
  model: 'small',
  client: '127.0.0.1',
  consumer: '',
  model_version: '',
  protocol: '',
  task: '',
  prompt_tokens: 0,
  completion_tokens: 0,
  tokens_estimated: false,
  ttft_seconds: 0,
  finish_reason: '',
  streamed: false,
  cost_usd: 0,
}

describe('RequestFeed', () => {
  it('shows method, route, status, latency in ms and model', () => {
    const w = mount(RequestFeed, { props: { requests: [base] } })
    const row = w.get('[data-testid=request-row]')
    expect(row.text()).toContain('POST')
    expect(row.text()).toContain('/v1/chat')
    expect(row.text()).toContain('200')
    expect(row.text()).toContain('42.1 ms')
    expect(row.text()).toContain('small')
  })

  it('marks transport errors (status 0) and empty strings', () => {
    const w = mount(RequestFeed, { props: { requests: [{ ...base, id: '2', status: 0, error: 'timeout', model: '', route: '' }] } })
    const row = w.get('[data-testid=request-row]')
    expect(row.text()).toContain('ERR')
    expect(row.text()).toContain('/v1/chat?x=1')
    expect(row.text()).toContain('—')
  })

  it('has an empty state', () => {
    expect(mount(RequestFeed, { props: { requests: [] } }).text()).toContain('No requests recorded yet')
  })
})
