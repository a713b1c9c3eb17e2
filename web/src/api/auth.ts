import { api } from './client'
import type { AuthState, Role } from '../lib/session'

export interface UserView {
  name: string
  role: Role
  created_at: number
  updated_at: number
}

export interface TokenView {
  id: string
  name: string
  role: Role
  created_at: number
  created_by: string
  expires_at: number | null
  last_used_at: number | null
}

export interface CreatedToken {
  /** The secret, shown once. */
  token: string
  info: TokenView
}

export interface AuditEntry {
  id: number
  at: number
  actor: string
  role: string
  action: string
  target: string
  source: string
  outcome: string
  before: Record<string, unknown> | null
  after: Record<string, unknown> | null
}

export interface AuditPage {
  entries: AuditEntry[]
  next_before_id: number | null
}

export const authApi = {
  state: (signal?: AbortSignal) => api.get<AuthState>('/api/v1/auth/state', {}, signal),
  login: (username: string, password: string) => api.request<AuthState>('POST', '/api/v1/auth/login', {}, { username, password }),
  logout: () => api.request<AuthState>('POST', '/api/v1/auth/logout'),
  users: (signal?: AbortSignal) => api.get<{ users: UserView[] }>('/api/v1/users', {}, signal),
  addUser: (body: { name: string; role: Role; password: string }) => api.request<UserView>('POST', '/api/v1/users', {}, body),
  changeUser: (name: string, body: { role?: Role; password?: string }) =>
    api.request<UserView>('PUT', `/api/v1/users/${encodeURIComponent(name)}`, {}, body),
  removeUser: (name: string) => api.request<void>('DELETE', `/api/v1/users/${encodeURIComponent(name)}`),
  tokens: (signal?: AbortSignal) => api.get<{ tokens: TokenView[] }>('/api/v1/tokens', {}, signal),
  createToken: (body: { name: string; role: Role; expires_in?: string }) => api.request<CreatedToken>('POST', '/api/v1/tokens', {}, body),
  revokeToken: (id: string) => api.request<void>('DELETE', `/api/v1/tokens/${encodeURIComponent(id)}`),
  audit: (q: { limit?: number; before_id?: number; actor?: string } = {}, signal?: AbortSignal) =>
    api.get<AuditPage>('/api/v1/audit', q, signal),
}
