import { describe, expect, it } from 'vitest'
import { patchLast } from './useSparklines'

describe('patchLast', () => {
  it('replaces the current minute with the live value', () => {
    expect(patchLast([[0, 1], [60, 2]], 5, 90)).toEqual([[0, 1], [60, 5]])
  })
  it('appends a point when the current minute is missing', () => {
    expect(patchLast([[0, 1], [60, 2]], 5, 130)).toEqual([[0, 1], [60, 2], [120, 5]])
  })
  it('leaves the series alone without live data', () => {
    const pts: [number, number | null][] = [[0, 1]]
    expect(patchLast(pts, null, 100)).toBe(pts)
  })
})
