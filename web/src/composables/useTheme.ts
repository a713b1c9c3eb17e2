import { ref, watch, type Ref } from 'vue'

export type Theme = 'light' | 'dark'
export const THEME_STORAGE_KEY = 'modelmonitor-theme'

function stored(): Theme | null {
  try {
    const v = localStorage.getItem(THEME_STORAGE_KEY)
    return v === 'light' || v === 'dark' ? v : null
  } catch {
    return null
  }
}

function preferred(): Theme {
  try {
    return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
  } catch {
    return 'light'
  }
}

let theme: Ref<Theme> | null = null

function apply(t: Theme) {
  document.documentElement.classList.toggle('dark', t === 'dark')
  document.documentElement.style.colorScheme = t
}

/** Dark/light theme: remembered in localStorage, default from prefers-color-scheme. */
export function useTheme() {
  if (!theme) {
    theme = ref<Theme>(stored() ?? preferred())
    apply(theme.value)
    watch(theme, (t) => {
      apply(t)
      try {
        localStorage.setItem(THEME_STORAGE_KEY, t)
      } catch {
        /* private mode */
      }
    })
  }
  const t = theme
  const toggle = () => {
    t.value = t.value === 'dark' ? 'light' : 'dark'
  }
  return { theme: t, toggle }
}

/** For tests: forget the singleton. */
export function _resetTheme() {
  theme = null
}
