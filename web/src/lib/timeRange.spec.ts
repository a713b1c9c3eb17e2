import { describe, expect, it } from 'vitest'
import { completeLastRate, rangeFromQuery, rangeQuery, rangeToQuery, stepFor, type TimeRange } from './timeRange'

describe('time ranges', () => {
  it('round-trips through the URL query', () => {
    const ranges: TimeRange[] = [{ kind: 'live' }, { kind: 'relative', key: '24h' }, { kind: 'custom', start: 1000, end: 5000 }]
    for (const r of ranges) expect(rangeFromQuery(rangeToQuery(r))).toEqual(r)
    expect(rangeFromQuery({ range: 'bogus' })).toEqual({ kind: 'live' })
    expect(rangeFromQuery({ range: 'custom', start: '9', end: '3' })).toEqual({ kind: 'live' })
  })
  it('maps to API parameters (relative syntax, step ≥ 60 s)', () => {
    expect(rangeQuery({ kind: 'relative', key: '15m' })).toEqual({ start: '-15m', end: 'now', step: '60s' })
    expect(rangeQuery({ kind: 'relative', key: '7d' })).toEqual({ start: '-7d', end: 'now', step: '1h' })
    expect(rangeQuery({ kind: 'custom', start: 0, end: 86400 })).toEqual({ start: 0, end: 86400, step: '360s' })
    expect(stepFor(600)).toBe('60s')
  })
})

describe('completeLastRate', () => {
  it('rescales the open last step to the elapsed time', () => {
    expect(completeLastRate([[0, 20], [60, 5]], 60, 75)).toEqual([[0, 20], [60, 20]])
  })
  it('drops a step that just began and keeps complete series', () => {
    expect(completeLastRate([[0, 20], [60, 0.1]], 60, 62)).toEqual([[0, 20]])
    const done: [number, number | null][] = [[0, 20], [60, 19]]
    expect(completeLastRate(done, 60, 120)).toBe(done)
  })
})
