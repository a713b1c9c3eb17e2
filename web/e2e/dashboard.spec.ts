import { copyFileSync, mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Page } from '@playwright/test'
import type { LiveSnapshot, ServiceLive } from '../src/api/types'
import { REPO_DIR, WEB_DIR, ensureTraffic, stopTraffic } from './backend'
import { expect, test } from './fixtures'

test.use({ baseURL: process.env.MM_BASE_URL })
test.describe.configure({ mode: 'serial' })

const SHOTS = resolve(WEB_DIR, 'test-results')
const DOCS = resolve(REPO_DIR, 'docs/screenshots')

/** Screenshot to test-results/; the README ones are also copied to docs/screenshots/. */
async function shot(page: Page, name: string, toDocs = false) {
  mkdirSync(SHOTS, { recursive: true })
  const file = resolve(SHOTS, `${name}.png`)
  await page.screenshot({ path: file })
  if (toDocs) {
    mkdirSync(DOCS, { recursive: true })
    copyFileSync(file, resolve(DOCS, `${name}.png`))
  }
}

async function realtime(): Promise<LiveSnapshot> {
  const res = await fetch(`${process.env.MM_BASE_URL}/api/v1/metrics/realtime`)
  expect(res.ok).toBe(true)
  return (await res.json()) as LiveSnapshot
}

/** The busiest service according to the API, once traffic shows up. */
async function busiestService(): Promise<ServiceLive> {
  let found: ServiceLive | undefined
  await expect
    .poll(
      async () => {
        const snap = await realtime()
        found = snap.services.slice().sort((a, b) => (b.windows['10s']?.rps ?? 0) - (a.windows['10s']?.rps ?? 0))[0]
        return found?.windows['10s']?.rps ?? 0
      },
      { timeout: 30_000, message: 'traffic reaches the API' },
    )
    .toBeGreaterThan(5)
  return found!
}

/** "20.0 req/s" -> 20, "1.5k req/s" -> 1500, "5,432" -> 5432. */
function parseNumber(text: string): number {
  const m = text.replace(/,/g, '').match(/(-?\d+(?:\.\d+)?)(k?)/)
  if (!m) return Number.NaN
  return Number(m[1]) * (m[2] === 'k' ? 1000 : 1)
}

test.afterAll(() => stopTraffic())

test('overview: live numbers match the API and update within 2 s', async ({ page }) => {
  ensureTraffic()
  await page.goto('/')
  await expect(page.getByTestId('live-indicator')).toHaveAttribute('data-state', 'live', { timeout: 15_000 })

  const svc = await busiestService()
  const card = page.locator(`[data-testid=service-card][data-service="${svc.service}"]`)
  await expect(card).toBeVisible()
  await expect(card.getByTestId('status-badge')).toHaveAttribute('data-status', /healthy|degraded|down/)

  // Throughput on screen vs the API (both the 10-second window), within tolerance.
  for (let i = 0; i < 3; i++) {
    const [shown, api] = await Promise.all([card.getByTestId('rps').textContent(), realtime()])
    const apiRps = api.services.find((s) => s.service === svc.service)?.windows['10s']?.rps ?? 0
    const uiRps = parseNumber(shown ?? '')
    expect(shown).toMatch(/req\/s$/)
    expect(Math.abs(uiRps - apiRps), `UI ${shown} vs API ${apiRps.toFixed(2)} req/s`).toBeLessThanOrEqual(Math.max(3, apiRps * 0.25))
    await page.waitForTimeout(700)
  }

  // Request count (5-minute window) on screen vs the API.
  const [countText, api] = await Promise.all([card.getByTestId('requests-5m').textContent(), realtime()])
  const apiCount = api.services.find((s) => s.service === svc.service)?.windows['5m']?.requests ?? 0
  expect(Math.abs(parseNumber(countText ?? '') - apiCount), `UI ${countText} vs API ${apiCount}`).toBeLessThanOrEqual(Math.max(40, apiCount * 0.1))

  // The numbers move with the traffic: a change within 2 s.
  const before = await card.getByTestId('requests-5m').textContent()
  await expect.poll(() => card.getByTestId('requests-5m').textContent(), { timeout: 2_000, intervals: [100] }).not.toBe(before)

  // Units on the latency figures.
  await expect(card.getByTestId('p50')).toHaveText(/ms$|s$/)
  await expect(card.getByTestId('error-rate')).toHaveText(/%$/)

  await page.waitForTimeout(1000)
  await shot(page, 'dashboard-desktop', true)
})

test('service page: charts, routes, live feed and time ranges without reload', async ({ page }) => {
  ensureTraffic()
  await page.goto('/')
  const svc = await busiestService()
  await page.locator(`[data-testid=service-card][data-service="${svc.service}"] [data-testid=service-link]`).click()
  await expect(page).toHaveURL(new RegExp(`/services/${encodeURIComponent(svc.service)}$`))
  await expect(page.getByTestId('service-name')).toHaveText(svc.service)
  await expect(page.locator('[data-testid=charts] canvas')).toHaveCount(4)
  await expect(page.getByTestId('service-stats')).toContainText('req/s')

  // Live request feed: rows appear and new ones arrive.
  const rows = page.getByTestId('request-row')
  await expect(rows.first()).toBeVisible({ timeout: 10_000 })
  const firstRow = await rows.first().textContent()
  await expect.poll(() => rows.first().textContent(), { timeout: 5_000 }).not.toBe(firstRow)
  await expect(rows.first()).toContainText(/ms/)
  await expect(page.getByTestId('routes-slowest').locator('tbody tr').first()).toBeVisible({ timeout: 10_000 })
  await shot(page, 'service-desktop')

  // Clicking a route filters the request feed to it.
  const routeButton = page.getByTestId('routes-slowest').locator('tbody tr button').first()
  const route = (await routeButton.getAttribute('data-route'))!
  const filtered = page.waitForResponse((r) => r.url().includes('/api/v1/requests') && r.url().includes(`route=${encodeURIComponent(route)}`))
  await routeButton.click()
  expect((await filtered).status()).toBe(200)
  await expect(page.getByTestId('route-filter')).toContainText(route)
  await expect(rows.first()).toContainText(route)
  await page.getByTestId('route-filter').click()
  await expect(page.getByTestId('route-filter')).toHaveCount(0)

  // Switching ranges is client-side: a marker on window survives.
  await page.evaluate(() => ((window as unknown as { __noReload: boolean }).__noReload = true))
  const noReload = () => page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true)

  const historical = page.waitForResponse((r) => r.url().includes('/api/v1/metrics/historical') && r.url().includes('start=-1h'))
  await page.locator('[data-range="1h"]').click()
  await expect(page).toHaveURL(/range=1h/)
  expect((await historical).status()).toBe(200)
  await expect(page.getByTestId('range-text')).toContainText('Last 1 h')
  await expect(page.getByText('Loading history…')).toHaveCount(0)
  expect(await noReload()).toBe(true)

  await page.locator('[data-range="24h"]').click()
  await expect(page).toHaveURL(/range=24h/)
  await expect(page.getByTestId('range-text')).toContainText('Last 24 h')

  await page.locator('[data-range="custom"]').click()
  const form = page.getByTestId('custom-range')
  await expect(form).toBeVisible()
  const custom = page.waitForResponse((r) => r.url().includes('/api/v1/metrics/historical') && /start=\d+/.test(r.url()))
  await form.getByRole('button', { name: 'Apply' }).click()
  await expect(page).toHaveURL(/range=custom/)
  expect((await custom).status()).toBe(200)

  await page.locator('[data-range="live"]').click()
  await expect(page).not.toHaveURL(/range=/)
  await expect(page.getByTestId('range-text')).toContainText('Live')
  expect(await noReload()).toBe(true)
})

test('alerts and system pages', async ({ page }) => {
  await page.goto('/alerts')
  await expect(page.getByRole('tab')).toHaveCount(4)
  await expect(page.getByText(/Alerting not configured yet|Firing \(\d+\)/).first()).toBeVisible()
  await page.getByRole('tab', { name: 'Silences' }).click()
  await expect(page).toHaveURL(/tab=silences/)
  await expect(page.getByTestId('empty-state')).toBeVisible()

  await page.getByRole('link', { name: 'System' }).click()
  await expect(page.getByTestId('components')).toBeVisible()
  await expect(page.getByTestId('proxies')).toBeVisible()
  await expect(page.getByText('Ingest rate')).toBeVisible()
  await expect(page.getByText(/events\/s/)).toBeVisible()
})

test('theme toggle is remembered', async ({ page }) => {
  await page.goto('/')
  const isDark = () => page.evaluate(() => document.documentElement.classList.contains('dark'))
  const initial = await isDark()
  await page.getByTestId('theme-toggle').click()
  expect(await isDark()).toBe(!initial)
  await page.reload()
  expect(await isDark()).toBe(!initial)
})

test.describe('phone', () => {
  test.use({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 })

  test('375 px wide: no horizontal overflow on any page', async ({ page }) => {
    ensureTraffic()
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    await page.goto('/')
    await expect(page.getByTestId('live-indicator')).toHaveAttribute('data-state', 'live', { timeout: 15_000 })
    const svc = await busiestService()
    await expect(page.locator(`[data-testid=service-card][data-service="${svc.service}"]`)).toBeVisible()
    await page.waitForTimeout(1500)
    expect(await overflow()).toBeLessThanOrEqual(0)
    await shot(page, 'dashboard-phone', true)
    await page.locator('[data-layout="table"]').click()
    await expect(page.locator(`[data-testid=service-row][data-service="${svc.service}"]`)).toBeVisible()
    expect(await overflow(), 'table layout').toBeLessThanOrEqual(0)

    await page.goto(`/services/${encodeURIComponent(svc.service)}`)
    await expect(page.getByTestId('request-row').first()).toBeVisible({ timeout: 10_000 })
    expect(await overflow()).toBeLessThanOrEqual(0)
    await page.locator('[data-range="custom"]').click()
    expect(await overflow()).toBeLessThanOrEqual(0)
    await shot(page, 'service-phone')

    for (const path of ['/alerts', '/system']) {
      await page.goto(path)
      await page.waitForLoadState('networkidle')
      expect(await overflow(), path).toBeLessThanOrEqual(0)
    }
  })
})
