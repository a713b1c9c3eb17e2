import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { freePort, modelmonitorBin, start, stop } from './backend'
import { expect, test } from './fixtures'

/**
 * The data quality page against a real backend of its own: `modelmonitor up` with a
 * service that samples every request to the demo's scikit-learn /invocations model.
 */
test.describe.configure({ mode: 'serial' })

const COLUMNS = [
  'alcohol', 'malic_acid', 'ash', 'alcalinity_of_ash', 'magnesium', 'total_phenols', 'flavanoids',
  'nonflavanoid_phenols', 'proanthocyanins', 'color_intensity', 'hue', 'od280/od315_of_diluted_wines', 'proline',
]
const MEANS = [13, 2.3, 2.4, 19.5, 99.7, 2.3, 2.0, 0.36, 1.6, 5.1, 0.96, 2.6, 747]

function rows(n: number, seed: number, magnesiumShift: number, partner: number): (number | string)[][] {
  let s = seed
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648)
  return Array.from({ length: n }, () => [
    ...MEANS.map((m, i) => +(m * (0.85 + 0.3 * rnd()) + (i === 4 ? magnesiumShift : 0)).toFixed(3)),
    rnd() < partner ? 'partner' : rnd() < 0.6 ? 'web' : 'app',
  ])
}

let backend: ChildProcess | null = null
let api = ''
let proxy = ''
let shiftedFrom = 0

// The worker's profile flush and the page's first drift request race under load: retry
// (a fresh backend each time) rather than let one slow flush fail the run.
test.describe.configure({ retries: 2 })

test.beforeAll(async () => {
  const [proxyPort, apiPort] = [await freePort(), await freePort()]
  const dir = mkdtempSync(join(tmpdir(), 'modelmonitor-e2e-data-'))
  const config = join(dir, 'data.yaml')
  const demo = process.env.MM_DEMO_URL
  if (!demo) throw new Error('MM_DEMO_URL is not set: the global setup did not run')
  writeFileSync(
    config,
    ['quality_bucket_seconds: 1', 'services:', '  - name: wine', `    upstream: ${demo}`, '    sampling: {rate: 1.0}', ''].join('\n'),
  )
  backend = start(modelmonitorBin(), ['up', '--config', config, '--listen', `127.0.0.1:${proxyPort}`, '--api', `127.0.0.1:${apiPort}`, '--data-dir', dir], () => {})
  api = `http://127.0.0.1:${apiPort}`
  proxy = `http://127.0.0.1:${proxyPort}`
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${api}/api/v1/health`)).ok) break
    } catch {
      /* not yet */
    }
    if (i > 300) throw new Error('the data backend did not start')
    await new Promise((r) => setTimeout(r, 300))
  }
  const send = async (shift: number, partner: number, seed: number) => {
    for (let i = 0; i < 40; i++) {
      const body = { dataframe_split: { columns: [...COLUMNS, 'channel'], data: rows(25, seed + i, shift, partner) } }
      await fetch(`${proxy}/invocations`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
    }
  }
  const from = Date.now() / 1000 - 1
  await send(0, 0.2, 1)
  await new Promise((r) => setTimeout(r, 7000)) // the worker's profile flush
  const until = Date.now() / 1000
  shiftedFrom = until
  await send(40, 0.6, 1000)
  const pinned = await fetch(`${api}/api/v1/services/wine/references/steady`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ start: String(from), end: String(until) }),
  })
  expect(pinned.status).toBe(201)
  // Wait until the worker has profiled the shifted phase (its flush time varies with load).
  const query = `reference=steady&start=${shiftedFrom}&end=now`
  for (let i = 0; ; i++) {
    const answer = await fetch(`${api}/api/v1/services/wine/drift?${query}`)
    const report = answer.ok ? (await answer.json()).report : null
    if (report && report.current_rows > 0 && report.features.length > 0) break
    if (i > 120) throw new Error(`the shifted phase was never profiled (${answer.status})`)
    await new Promise((r) => setTimeout(r, 500))
  }
})

test.afterAll(() => stop(backend))

test('data page: drifting features first, histograms, prediction chart, sample viewer', async ({ page }) => {
  // The default reference (the first hours) covers both phases here, so compare against the pinned one
  // through the API and check the page renders the same verdicts for the same request.
  await page.route('**/api/v1/services/wine/drift?**', async (route) => {
    const url = new URL(route.request().url())
    url.searchParams.set('reference', 'steady')
    url.searchParams.set('start', String(shiftedFrom))
    await route.continue({ url: url.toString() })
  })
  await page.goto(`${api}/services/wine/data`)
  await expect(page.getByTestId('data-view')).toBeVisible()
  const table = page.getByTestId('drift-table-features')
  await expect(table.locator('tbody tr[data-feature]').first()).toBeVisible()
  const first = await table.locator('tbody tr[data-feature]').evaluateAll((rows) =>
    rows.slice(0, 2).map((r) => [r.getAttribute('data-feature'), r.querySelector('[data-testid=verdict]')?.textContent?.trim()]),
  )
  expect(first.map(([name]) => name).sort()).toEqual(['channel', 'magnesium'])
  expect(first.every(([, verdict]) => verdict === 'drift')).toBe(true)
  await table.locator('tr[data-feature="magnesium"]').click()
  await expect(page.getByTestId('drift-bars').locator('[data-testid=bin]')).not.toHaveCount(0)
  await expect(page.getByTestId('drift-bars').locator('[data-testid=cur-bar]').last()).toBeVisible()
  await expect(page.getByTestId('drift-table-predictions').locator('tr[data-feature="prediction"]')).toBeVisible()
  const samples = page.getByTestId('samples')
  await samples.locator('button[data-sample]').first().click()
  await expect(samples.getByTestId('sample-detail')).toContainText('dataframe_split')
  await page.screenshot({ path: 'test-results/data-page.png', fullPage: true })
})
