import { reactive } from 'vue'

/** Roles, weakest first; each includes the ones before it. */
export const ROLES = ['metrics', 'viewer', 'editor', 'admin'] as const
export type Role = (typeof ROLES)[number]

export interface AuthUser {
  name: string
  role: Role
  /** none (auth off), session, token, admin-token, proxy */
  method: string
}

/** GET /api/v1/auth/state */
export interface AuthState {
  enabled: boolean
  methods: string[]
  oidc_label: string | null
  user: AuthUser | null
  csrf_token: string | null
}

/** The one copy of who is signed in, shared by the router, the API client and the views. */
export const session = reactive<{ state: AuthState | null }>({ state: null })

export function setAuthState(state: AuthState | null): void {
  session.state = state
}

/** Whether `role` includes `need` (an admin can do what an editor can, and so on). */
export function roleAtLeast(role: Role | null | undefined, need: Role): boolean {
  if (!role) return false
  return ROLES.indexOf(role) >= ROLES.indexOf(need)
}

/** Whether the signed-in principal (or everyone, with auth off) holds `need`. */
export function can(need: Role): boolean {
  return roleAtLeast(session.state?.user?.role, need)
}

export function csrfToken(): string | null {
  return session.state?.csrf_token ?? null
}

/** Only paths on this site may follow a login (no open redirects). */
export function safeNext(raw: unknown): string {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.startsWith('//') || raw.includes('\\')) return '/'
  if (raw.startsWith('/login')) return '/'
  return raw
}
