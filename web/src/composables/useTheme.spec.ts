import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { nextTick } from 'vue'
import { THEME_STORAGE_KEY, _resetTheme, useTheme } from './useTheme'

function prefersDark(dark: boolean) {
  vi.stubGlobal('matchMedia', (q: string) => ({ matches: dark && q.includes('dark'), media: q }) as MediaQueryList)
  window.matchMedia = globalThis.matchMedia
}

describe('useTheme', () => {
  beforeEach(() => {
    localStorage.clear()
    document.documentElement.classList.remove('dark')
    _resetTheme()
  })
  afterEach(() => vi.unstubAllGlobals())

  it('defaults to the system preference', () => {
    prefersDark(true)
    expect(useTheme().theme.value).toBe('dark')
    expect(document.documentElement.classList.contains('dark')).toBe(true)
  })

  it('toggles, applies the class and remembers the choice', async () => {
    prefersDark(false)
    const { theme, toggle } = useTheme()
    expect(theme.value).toBe('light')
    toggle()
    await nextTick()
    expect(document.documentElement.classList.contains('dark')).toBe(true)
    expect(localStorage.getItem(THEME_STORAGE_KEY)).toBe('dark')
    _resetTheme()
    expect(useTheme().theme.value).toBe('dark') // stored choice beats the system preference
  })
})
