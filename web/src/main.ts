import { createApp } from 'vue'
import App from './App.vue'
import { api } from './api/client'
import { csrfToken, session, setAuthState } from './lib/session'
import { router } from './router'
import './style.css'

api.csrf = csrfToken
// A 401 means the session ended (expired, logged out elsewhere): sign in again.
api.onUnauthorized = () => {
  const current = router.currentRoute.value
  if (current.meta.public || !session.state?.enabled) return
  setAuthState(null)
  void router.replace({ name: 'login', query: { next: current.fullPath, expired: '1' } })
}

createApp(App).use(router).mount('#app')
