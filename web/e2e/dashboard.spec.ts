import { copyFileSync, mkdirSync } from 'node:fs'
import { connect } from 'node:net'
import { resolve } from 'node:path'
import type { Page } from '@playwright/test'
import type { LiveSnapshot, ServiceLive } from '../src/api/types'
import { REPO_DIR, WEB_DIR, ensureTraffic, setChaos, stopTraffic } from './backend'
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

test.afterAll(async () => {
  stopTraffic()
  await setChaos(0).catch(() => undefined)
})

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
  await page.getByRole('tab', { name: 'Delivery log' }).click()
  await expect(page.locator('[data-testid=channel][data-channel=ops-hook]')).toHaveAttribute('data-enabled', 'true')

  // A request with no Host: the proxy refuses it at its edge and reports the count.
  const proxy = new URL(process.env.MM_PROXY_URL ?? '')
  await new Promise<void>((done, fail) => {
    const socket = connect(Number(proxy.port), proxy.hostname, () => socket.end('GET / HTTP/1.1\r\n\r\n'))
    socket.on('data', () => undefined).on('close', () => done()).on('error', fail)
  })
  await page.getByRole('link', { name: 'System' }).click()
  await expect(page.getByTestId('components')).toBeVisible()
  await expect(page.getByTestId('proxies')).toBeVisible()
  await expect(page.getByRole('columnheader', { name: 'Refused' })).toBeVisible()
  await expect(page.getByTestId('proxy-refused').first()).not.toHaveText('0', { timeout: 15_000 })
  await expect(page.getByText('Ingest rate')).toBeVisible()
  await expect(page.getByText(/events\/s/)).toBeVisible()
})

test('alerting: a rule created in the UI fires, shows on the alerts page and the overview, is silenced and deleted', async ({ page }) => {
  test.setTimeout(150_000)
  ensureTraffic(20, 90)
  const svc = await busiestService()
  const ruleName = 'e2e error rate'

  // Create the rule through the form: error_rate > 1 % over 10 s, for 0 s, min 1 request.
  await page.goto('/alerts?tab=rules')
  await page.getByTestId('new-rule').click()
  const form = page.getByTestId('rule-form')
  await form.locator('input[name=name]').fill(ruleName)
  await form.locator('select[name=service]').selectOption(svc.service)
  await form.locator('select[name=metric]').selectOption('error_rate')
  await expect(form.getByTestId('threshold-unit')).toHaveText('%')
  await form.locator('input[name=threshold]').fill('1')
  await form.locator('select[name=window]').selectOption('10s')
  await form.locator('input[name=for]').fill('0s')
  await form.locator('input[name=min_requests]').fill('1')
  await form.locator('select[name=severity]').selectOption('critical')
  const created = page.waitForResponse((r) => r.url().endsWith('/api/v1/alerts/rules') && r.request().method() === 'POST')
  await form.getByTestId('rule-save').click()
  expect((await created).status()).toBe(201)
  const row = page.locator(`[data-testid=rule-row][data-rule="${ruleName}"]`)
  await expect(row).toContainText('Error rate > 1 % over 10s')
  await expect(form).toHaveCount(0)

  // Break the model API while traffic runs: the alert fires within ~15 s.
  await setChaos(1.0)
  await page.getByRole('tab', { name: 'Alerts' }).click()
  const firing = page.getByTestId('alerts-firing')
  await expect(firing).toContainText(ruleName, { timeout: 20_000 })
  await expect(firing.locator('[data-state=firing]').first()).toContainText('%')
  await expect(page.locator('[data-testid=timeline-row][data-state=firing]').first()).toBeVisible({ timeout: 20_000 })
  await page.waitForTimeout(500)
  await shot(page, 'dashboard-alerts', true)

  // ... and on the overview.
  await page.goto('/')
  await expect(page.getByTestId('firing-alerts')).toContainText(ruleName, { timeout: 20_000 })

  // The webhook channel got the firing notification.
  await page.goto('/alerts?tab=deliveries')
  await expect(page.locator('[data-testid=delivery-row][data-status=delivered]').first()).toBeVisible({ timeout: 15_000 })
  await expect(page.getByTestId('delivery-table')).toContainText('ops-hook')
  await page.locator('[data-testid=channel][data-channel=ops-hook]').getByTestId('test-channel').click()
  await expect(page.getByTestId('test-result')).toContainText('delivered')

  // Silence it from the alert.
  await page.goto('/alerts')
  await page.getByTestId('alerts-firing').getByTestId('silence-alert').first().click()
  await expect(page).toHaveURL(/tab=silences/)
  const silenceForm = page.getByTestId('silence-form')
  await expect(silenceForm.locator('input[name=matcher-value-0]')).toHaveValue(svc.service)
  await silenceForm.locator('input[name=comment]').fill('e2e: investigating')
  await silenceForm.getByTestId('silence-save').click()
  await expect(page.locator('[data-testid=silence-row][data-status=active]')).toContainText('e2e: investigating')
  await page.getByRole('tab', { name: 'Alerts' }).click()
  await expect(page.getByTestId('alerts-firing')).toContainText('Silenced', { timeout: 10_000 })

  // Expire and delete the silence, then delete the rule.
  await page.getByRole('tab', { name: 'Silences' }).click()
  await page.getByTestId('expire-silence').click()
  await expect(page.locator('[data-testid=silence-row]')).toHaveCount(0)
  await page.locator('input[name=include_expired]').check()
  await page.locator('[data-testid=silence-row][data-status=expired]').getByTestId('delete-silence').click()
  await expect(page.locator('[data-testid=silence-row]')).toHaveCount(0)

  await setChaos(0)
  await page.getByRole('tab', { name: 'Rules' }).click()
  await row.getByTestId('delete-rule').click()
  await row.getByTestId('delete-rule').click()
  await expect(row).toHaveCount(0)
  await page.getByRole('tab', { name: 'Alerts' }).click()
  await expect(page.getByTestId('alerts-firing')).not.toContainText(ruleName)
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

    for (const path of ['/alerts', '/alerts?tab=rules', '/alerts?tab=silences', '/alerts?tab=deliveries', '/system']) {
      await page.goto(path)
      await page.waitForLoadState('networkidle')
      expect(await overflow(), path).toBeLessThanOrEqual(0)
    }
    // The rule and silence forms fit too.
    await page.goto('/alerts?tab=rules')
    await page.getByTestId('new-rule').click()
    await expect(page.getByTestId('rule-form')).toBeVisible()
    expect(await overflow(), 'rule form').toBeLessThanOrEqual(0)
    await page.goto('/alerts?tab=silences')
    await page.getByTestId('new-silence').click()
    await expect(page.getByTestId('silence-form')).toBeVisible()
    expect(await overflow(), 'silence form').toBeLessThanOrEqual(0)
    await shot(page, 'alerts-silence-phone')
  })
})
