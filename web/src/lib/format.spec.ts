import { describe, expect, it } from 'vitest'
import {
  DASH,
  formatBytes,
  formatCount,
  formatDuration,
  formatMs,
  formatPercent,
  formatRelative,
  formatRps,
} from './format'

describe('formatMs (input in seconds)', () => {
  it('shows milliseconds with sensible precision', () => {
    expect(formatMs(0.0012)).toBe('1.20 ms')
    expect(formatMs(0.0123)).toBe('12.3 ms')
    expect(formatMs(0.2504)).toBe('250 ms')
    expect(formatMs(2.5)).toBe('2500 ms')
    expect(formatMs(12.34)).toBe('12.3 s')
  })
  it('shows a dash for missing values', () => {
    expect(formatMs(null)).toBe(DASH)
    expect(formatMs(undefined)).toBe(DASH)
    expect(formatMs(Number.NaN)).toBe(DASH)
  })
})

describe('formatBytes', () => {
  it('picks B/KB/MB/GB', () => {
    expect(formatBytes(0)).toBe('0 B')
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KB')
    expect(formatBytes(5 * 1024 * 1024)).toBe('5.0 MB')
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MB')
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GB')
    expect(formatBytes(null)).toBe(DASH)
  })
})

describe('formatPercent (input is a fraction)', () => {
  it('converts fractions to %', () => {
    expect(formatPercent(0)).toBe('0 %')
    expect(formatPercent(0.0123)).toBe('1.2 %')
    expect(formatPercent(0.5)).toBe('50 %')
    expect(formatPercent(1)).toBe('100 %')
    expect(formatPercent(0.0004)).toBe('<0.1 %')
    expect(formatPercent(null)).toBe(DASH)
  })
})

describe('formatRps', () => {
  it('carries the req/s unit', () => {
    expect(formatRps(0)).toBe('0 req/s')
    expect(formatRps(1.234)).toBe('1.23 req/s')
    expect(formatRps(19.96)).toBe('20.0 req/s')
    expect(formatRps(250.4)).toBe('250 req/s')
    expect(formatRps(1500)).toBe('1.5k req/s')
  })
})

describe('formatCount and formatDuration', () => {
  it('formats counts', () => {
    expect(formatCount(1234567)).toBe('1,234,567')
    expect(formatCount(12, 'req')).toBe('12 req')
  })
  it('formats durations', () => {
    expect(formatDuration(42)).toBe('42 s')
    expect(formatDuration(300)).toBe('5 min')
    expect(formatDuration(3 * 3600 + 12 * 60)).toBe('3 h 12 min')
    expect(formatDuration(2 * 86400 + 4 * 3600)).toBe('2 d 4 h')
  })
})

describe('formatRelative', () => {
  const now = 1_700_000_000
  it('describes past and future times', () => {
    expect(formatRelative(now, now)).toBe('just now')
    expect(formatRelative(now - 12, now)).toBe('12 s ago')
    expect(formatRelative(now - 300, now)).toBe('5 min ago')
    expect(formatRelative(now + 3, now)).toBe('in 3 s')
    expect(formatRelative(null, now)).toBe('never')
  })
})
