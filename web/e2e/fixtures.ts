import { test as base, expect, type Page } from '@playwright/test'

/**
 * /api/v1/alerts may 404 (no alerting yet) or 503 (alerting not running in that process):
 * the dashboard treats both as "not configured".
 */
const ALLOWED_404 = /\/api\/v1\/alerts(\?|$)/

export interface PageProblems {
  problems: string[]
}

function watch(page: Page, problems: string[]) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return
    const where = msg.location().url ?? ''
    if (ALLOWED_404.test(where) || (ALLOWED_404.test(msg.text()) && /\b(404|503)\b/.test(msg.text()))) return
    problems.push(`console error: ${msg.text()} (${where})`)
  })
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
  page.on('requestfailed', (req) => {
    const failure = req.failure()?.errorText ?? ''
    // Requests cancelled on purpose (navigation, AbortController on range change) are not failures.
    if (failure.includes('ERR_ABORTED')) return
    problems.push(`request failed: ${req.method()} ${req.url()} ${failure}`)
  })
  page.on('response', (res) => {
    if (res.status() < 400) return
    if ((res.status() === 404 || res.status() === 503) && ALLOWED_404.test(res.url())) return
    problems.push(`HTTP ${res.status()}: ${res.request().method()} ${res.url()}`)
  })
}

/** `page` fails the test on any console error, page error, failed request or HTTP error. */
export const test = base.extend<PageProblems>({
  problems: [
    async ({ page }, use) => {
      const problems: string[] = []
      watch(page, problems)
      await use(problems)
      expect(problems, 'console errors / failed requests').toEqual([])
    },
    { auto: true },
  ],
})

export { expect }
