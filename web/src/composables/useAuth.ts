import { computed } from 'vue'
import { authApi } from '../api/auth'
import { can, session, setAuthState, type Role } from '../lib/session'

let loading: Promise<void> | null = null

/** Read who is signed in (once; again with `force`). */
export function loadAuthState(force = false): Promise<void> {
  if (session.state && !force) return Promise.resolve()
  loading ??= authApi
    .state()
    .then((state) => setAuthState(state))
    .finally(() => {
      loading = null
    })
  return loading
}

/** The signed-in principal and what it may do, for templates. */
export function useAuth() {
  const state = computed(() => session.state)
  return {
    state,
    user: computed(() => session.state?.user ?? null),
    enabled: computed(() => session.state?.enabled ?? true),
    can: (need: Role) => can(need),
    async logout(): Promise<void> {
      setAuthState(await authApi.logout())
    },
  }
}
