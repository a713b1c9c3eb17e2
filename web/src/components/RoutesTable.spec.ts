import { mount } from '@vue/test-utils'
import { describe, expect, it } from 'vitest'
import type { RouteStats } from '../api/types'
import RoutesTable from './RoutesTable.vue'

const r = (route: string, p95: number | null, errors: number, requests = 100): RouteStats => ({
  method: 'POST',
  route,
  requests,
  errors,
  error_rate: errors / requests,
  p50_seconds: p95 === null ? null : p95 / 2,
  p95_seconds: p95,
  p99_seconds: p95 === null ? null : p95 * 2,
})

const routes = [r('/a', 0.1, 0), r('/b', 0.5, 10), r('/c', null, 50), r('/d', 0.3, 1)]

describe('RoutesTable', () => {
  it('sorts the slowest routes by p95', () => {
    const w = mount(RoutesTable, { props: { title: 'Slowest', routes, sort: 'slowest' } })
    expect(w.findAll('tbody tr').map((t) => t.find('button').attributes('data-route'))).toEqual(['/b', '/d', '/a', '/c'])
    expect(w.find('tbody tr').text()).toContain('500 ms')
  })

  it('lists only failing routes, worst first', () => {
    const w = mount(RoutesTable, { props: { title: 'Failing', routes, sort: 'failing' } })
    expect(w.findAll('tbody tr').map((t) => t.find('button').attributes('data-route'))).toEqual(['/c', '/b', '/d'])
    expect(w.find('tbody tr').text()).toContain('50 %')
  })

  it('emits the clicked route and has empty states', async () => {
    const w = mount(RoutesTable, { props: { title: 'Slowest', routes, sort: 'slowest' } })
    await w.find('tbody tr').trigger('click')
    expect(w.emitted('select')).toEqual([['/b']])
    expect(mount(RoutesTable, { props: { title: 'F', routes: [r('/ok', 0.1, 0)], sort: 'failing' } }).text()).toContain('No failing routes')
  })
})
