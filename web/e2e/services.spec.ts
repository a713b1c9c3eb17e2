import { createServer, type Server } from 'node:http'
import { expect, test, type Page } from '@playwright/test'
import { freePort } from './backend'
import { PASSWORD, startAuthBackend, type AuthBackend } from './authBackend'

test.describe.configure({ mode: 'serial' })

let backend: AuthBackend
let upstream: { url: string; server: Server }

/** A model API the proxy does not know yet: it names itself and the path it got. */
async function startUpstream(): Promise<{ url: string; server: Server }> {
  const port = await freePort()
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`fresh-upstream ${req.method} ${req.url}`))
  })
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r))
  return { url: `http://127.0.0.1:${port}`, server }
}

test.beforeAll(async () => {
  upstream = await startUpstream()
  backend = await startAuthBackend('services', [], { proxy: true })
})

test.afterAll(async () => {
  await backend?.stop()
  upstream?.server.close()
})

async function signIn(page: Page, user: string, path: string) {
  await page.goto(`${backend.base}${path}`)
  await expect(page).toHaveURL(/\/login\?next=/)
  await page.getByTestId('login-username').fill(user)
  await page.getByTestId('login-password').fill(PASSWORD)
  await page.getByTestId('login-submit').click()
  await expect(page.getByTestId('user-name')).toHaveText(user)
}

async function throughProxy(path: string): Promise<string> {
  try {
    const res = await fetch(`${backend.proxy}${path}`)
    return `${res.status} ${await res.text()}`
  } catch (e) {
    return String(e)
  }
}

test('an admin adds a service and the running proxy serves it', async ({ page }) => {
  // Before: the prefix is nobody's, so the request goes to the demo service.
  await expect.poll(() => throughProxy('/fresh/v1/hello'), { timeout: 30_000 }).toMatch(/^\d{3} /)
  expect(await throughProxy('/fresh/v1/hello')).not.toContain('fresh-upstream')

  await signIn(page, 'ada', '/config/services')
  const demo = page.locator('[data-service=demo]')
  await expect(demo.getByTestId('read-only-badge')).toBeVisible()
  await expect(demo.getByTestId('edit-service')).toHaveCount(0)

  await page.getByTestId('new-service').click()
  const form = page.getByTestId('service-form')
  await form.locator('input[name=name]').fill('fresh')
  await form.locator('input[name=upstream]').fill(upstream.url)
  await form.locator('input[name=path_prefix]').fill('/fresh')
  await form.getByTestId('test-connection').click()
  await expect(form.getByTestId('connection-result')).toHaveText(/^Reachable: HTTP 200 in [\d.]+ ms$/)

  // A prefix another service has: the API's 409 is shown, nothing is stored.
  await form.locator('input[name=name]').fill('demo')
  await form.getByTestId('save-service').click()
  await expect(form.getByTestId('service-form-error')).toContainText('demo')

  await form.locator('input[name=name]').fill('fresh')
  await form.getByTestId('save-service').click()
  await expect(form).toHaveCount(0)
  const row = page.locator('[data-service=fresh]')
  await expect(row).toContainText('/fresh/*')
  await expect(row.getByTestId('read-only-badge')).toHaveCount(0)

  // No restart: the proxy picks it up within catalog_poll_seconds.
  await expect.poll(() => throughProxy('/fresh/v1/hello'), { timeout: 20_000 }).toBe('200 fresh-upstream GET /v1/hello')
})

test('a viewer sees the services but no edit controls', async ({ page }) => {
  await signIn(page, 'vic', '/config/services')
  await expect(page.locator('[data-service=demo]')).toBeVisible()
  await expect(page.locator('[data-service=fresh]')).toBeVisible()
  await expect(page.getByTestId('new-service')).toHaveCount(0)
  await expect(page.getByTestId('edit-service')).toHaveCount(0)
  await expect(page.getByTestId('delete-service')).toHaveCount(0)
})
