import { createServer, type Server } from 'node:http'
import { expect, test, type Page } from '@playwright/test'
import { freePort } from './backend'
import { PASSWORD, startAuthBackend, type AuthBackend } from './authBackend'

test.describe.configure({ mode: 'serial' })

let backend: AuthBackend
let shortSessions: AuthBackend

test.beforeAll(async () => {
  backend = await startAuthBackend('auth')
  shortSessions = await startAuthBackend('short-sessions', ['session_ttl: 5s'])
})

test.afterAll(async () => {
  await backend?.stop()
  await shortSessions?.stop()
})

async function signIn(page: Page, base: string, user: string, path = '/') {
  await page.goto(`${base}${path}`)
  await expect(page).toHaveURL(/\/login\?next=/)
  await page.getByTestId('login-username').fill(user)
  await page.getByTestId('login-password').fill(PASSWORD)
  await page.getByTestId('login-submit').click()
  await expect(page.getByTestId('user-name')).toHaveText(user)
}

test('login and logout', async ({ page }) => {
  await page.goto(`${backend.base}/alerts`)
  await expect(page).toHaveURL(`${backend.base}/login?next=/alerts`)
  await expect(page.getByTestId('auth-off-banner')).toHaveCount(0)
  await page.getByTestId('login-username').fill('ada')
  await page.getByTestId('login-password').fill('not the password')
  await page.getByTestId('login-submit').click()
  await expect(page.getByTestId('login-error')).toHaveText('Wrong user name or password.')
  await page.getByTestId('login-password').fill(PASSWORD)
  await page.getByTestId('login-submit').click()
  await expect(page).toHaveURL(`${backend.base}/alerts`)
  await expect(page.getByTestId('user-role')).toHaveText('admin')
  await expect(page.getByRole('link', { name: 'Users' })).toBeVisible()
  const cookie = (await page.context().cookies()).find((c) => c.name === 'mm_session')
  expect(cookie?.httpOnly).toBe(true)
  expect(cookie?.sameSite).toBe('Strict')
  await page.getByTestId('logout').click()
  await expect(page).toHaveURL(/\/login/)
  await page.goto(`${backend.base}/system`)
  await expect(page).toHaveURL(`${backend.base}/login?next=/system`)
  expect((await page.request.get(`${backend.base}/api/v1/services`)).status()).toBe(401)
})

test('session expiry sends the user back to the login page', async ({ page }) => {
  await signIn(page, shortSessions.base, 'vic', '/system')
  await expect(page.getByTestId('session-expired')).toBeVisible({ timeout: 20_000 })
  await expect(page).toHaveURL(/\/login\?next=%2Fsystem&expired=1|\/login\?next=\/system&expired=1/)
  expect((await page.request.get(`${shortSessions.base}/api/v1/services`)).status()).toBe(401)
})

test('a viewer sees no edit controls', async ({ page }) => {
  await signIn(page, backend.base, 'vic', '/alerts?tab=rules')
  await expect(page.getByTestId('rules-tab')).toBeVisible()
  await expect(page.getByTestId('new-rule')).toHaveCount(0)
  await page.goto(`${backend.base}/alerts?tab=silences`)
  await expect(page.getByTestId('silences-tab')).toBeVisible()
  await expect(page.getByTestId('new-silence')).toHaveCount(0)
  await page.goto(`${backend.base}/alerts?tab=deliveries`)
  await expect(page.getByText('ops-hook').first()).toBeVisible()
  await expect(page.getByTestId('test-channel')).toHaveCount(0)
  await expect(page.getByTestId('disable-channel')).toHaveCount(0)
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0)
  await page.goto(`${backend.base}/admin`)
  await expect(page).toHaveURL(`${backend.base}/`)
})

test('an editor edits rules but cannot manage users', async ({ page }) => {
  await signIn(page, backend.base, 'eve', '/alerts?tab=rules')
  await expect(page.getByTestId('new-rule')).toBeVisible()
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0)
  await page.goto(`${backend.base}/admin`)
  await expect(page).toHaveURL(`${backend.base}/`)
  const status = await page.evaluate(async () => (await fetch('/api/v1/users')).status)
  expect(status).toBe(403)
})

test('an admin manages tokens and reads the audit log', async ({ page }) => {
  await signIn(page, backend.base, 'ada', '/admin')
  await expect(page.locator('[data-user=vic]')).toBeVisible()
  await page.locator('input[name=new-token-name]').fill('grafana')
  await page.getByRole('button', { name: 'Create token' }).click()
  const secret = await page.getByTestId('new-token-secret').textContent()
  expect(secret).toMatch(/^mmt_/)
  const ok = await fetch(`${backend.base}/api/v1/services`, { headers: { Authorization: `Bearer ${secret}` } })
  expect(ok.status).toBe(200)
  await page.goto(`${backend.base}/audit`)
  await expect(page.getByTestId('audit-row').filter({ hasText: 'token.create' })).toBeVisible()
  await expect(page.getByTestId('audit-row').filter({ hasText: 'login' }).first()).toBeVisible()
})

/** A page on another origin (same site: the browser even attaches the session cookie)
 * that tries a form POST, a fetch and a WebSocket against the API. */
async function hostileOrigin(api: string): Promise<{ url: string; server: Server }> {
  const port = await freePort()
  const ws = api.replace('http://', 'ws://')
  const html = `<!doctype html><title>hostile</title>
<iframe name="sink"></iframe>
<form id="f" method="POST" action="${api}/api/v1/alerts/channels/ops-hook/disable" target="sink"></form>
<script>
window.results = { ws: 'none' }
document.getElementById('f').submit()
fetch('${api}/api/v1/alerts/silences', { method: 'POST', mode: 'no-cors', credentials: 'include',
  headers: { 'Content-Type': 'text/plain' },
  body: JSON.stringify({ matchers: [{ name: 'service', value: 'x' }], starts_at: 1700000000, ends_at: 4070908800, comment: 'pwned' }) })
  .then(() => { window.results.fetch = 'sent' }, () => { window.results.fetch = 'blocked' })
const socket = new WebSocket('${ws}/ws/metrics')
socket.onmessage = () => { window.results.ws = 'message' }
socket.onclose = () => { if (window.results.ws === 'none') window.results.ws = 'closed' }
setTimeout(() => { window.results.done = true }, 4000)
</script>`
  const server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(html))
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${port}/`, server }
}

async function attackChangesNothing(page: Page, api: string) {
  const { url, server } = await hostileOrigin(api)
  try {
    await page.goto(url)
    await page.waitForFunction(() => (window as unknown as { results: { done?: boolean } }).results.done === true, undefined, { timeout: 20_000 })
    const results = await page.evaluate(() => (window as unknown as { results: Record<string, unknown> }).results)
    expect(results.ws).not.toBe('message')
  } finally {
    server.close()
  }
  const channels = await (await page.request.get(`${api}/api/v1/alerts/channels`)).json()
  expect(channels.channels.find((c: { name: string }) => c.name === 'ops-hook').enabled).toBe(true)
  const silences = await (await page.request.get(`${api}/api/v1/alerts/silences`)).json()
  expect(silences.silences.filter((s: { comment: string }) => s.comment === 'pwned')).toEqual([])
}

test('a page on another origin changes nothing, even with an admin signed in', async ({ page }) => {
  await signIn(page, backend.base, 'ada')
  await attackChangesNothing(page, backend.base)
})

test('a page on another origin changes nothing when authentication is off', async ({ page }) => {
  const local = process.env.MM_BASE_URL!
  await page.goto(local)
  await expect(page.getByTestId('auth-off-banner')).toBeVisible()
  await attackChangesNothing(page, local)
})
