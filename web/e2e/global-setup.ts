import type { FullConfig } from '@playwright/test'
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { REPO_DIR, WEB_DIR, freePort, modelmonitorBin, start, stop } from './backend'

/**
 * Starts the REAL backend: `modelmonitor up --demo` on free ports with a
 * temporary data dir, waits for /api/v1/health, and stops it afterwards.
 */
export default async function globalSetup(_config: FullConfig): Promise<() => Promise<void>> {
  const index = resolve(REPO_DIR, 'src/modelmonitor/static/index.html')
  if (!existsSync(index)) throw new Error(`${index} is missing: run "npm run build" first`)

  const bin = modelmonitorBin()
  const [proxyPort, apiPort, demoPort, hookPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const dataDir = mkdtempSync(join(tmpdir(), 'modelmonitor-e2e-'))

  // A webhook receiver for the alerting tests (accepts every notification).
  const hook = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(204).end())
  })
  await new Promise<void>((r) => hook.listen(hookPort, '127.0.0.1', r))

  // Evaluate alert rules every second so the alerting test sees them fire quickly.
  const config = join(dataDir, 'e2e.yaml')
  writeFileSync(
    config,
    [
      'alert_evaluation_interval_seconds: 1',
      'notification_channels:',
      '  ops-hook:',
      '    type: webhook',
      `    url: http://127.0.0.1:${hookPort}/hook`,
      '    secret: e2e-shared-secret',
      '    allow_private: true',
      '',
    ].join('\n'),
  )
  const results = resolve(WEB_DIR, 'test-results')
  mkdirSync(results, { recursive: true })
  const log = createWriteStream(join(results, 'backend.log'))

  const args = ['up', '--demo', '--listen', `127.0.0.1:${proxyPort}`, '--api', `127.0.0.1:${apiPort}`, '--data-dir', dataDir, '--config', config]
  // The demo model API defaults to port 8080; use a free one so parallel runs do not clash.
  if (process.env.MM_DEMO_PORT_FLAG !== '0') args.push('--demo-port', String(demoPort))
  log.write(`$ ${bin} ${args.join(' ')}\n`)
  const backend = start(bin, args, (s) => log.write(s))

  const base = `http://127.0.0.1:${apiPort}`
  const deadline = Date.now() + 90_000
  let lastError = ''
  for (;;) {
    if (backend.exitCode !== null) throw new Error(`modelmonitor up exited with ${backend.exitCode}; see test-results/backend.log`)
    try {
      const res = await fetch(`${base}/api/v1/health`)
      if (res.ok) break
      lastError = `HTTP ${res.status}`
    } catch (e) {
      lastError = String(e)
    }
    if (Date.now() > deadline) {
      stop(backend, 'SIGKILL')
      throw new Error(`backend not healthy after 90 s (${lastError}); see test-results/backend.log`)
    }
    await new Promise((r) => setTimeout(r, 300))
  }

  process.env.MM_BASE_URL = base
  process.env.MM_PROXY_URL = `http://127.0.0.1:${proxyPort}`
  process.env.MM_DEMO_URL = `http://127.0.0.1:${process.env.MM_DEMO_PORT_FLAG !== '0' ? demoPort : 8080}`

  return async () => {
    stop(backend)
    await new Promise((r) => setTimeout(r, 1500))
    stop(backend, 'SIGKILL')
    hook.close()
    log.end()
    rmSync(dataDir, { recursive: true, force: true })
  }
}
