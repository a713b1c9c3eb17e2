import { beforeEach } from 'vitest'
import { setAuthState } from './lib/session'

// Component tests run as `modelmonitor up` on loopback with no users: authentication
// off, everyone the local admin. Tests of roles set their own state.
beforeEach(() => {
  setAuthState({ enabled: false, methods: ['password'], oidc_label: null, user: { name: 'local', role: 'admin', method: 'none' }, csrf_token: null })
})
