import { spawnSync, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { WEB_DIR, freePort, modelmonitorBin, start, stop } from './backend'

export const PASSWORD = 'correct horse battery staple'
export const USERS = { ada: 'admin', eve: 'editor', vic: 'viewer' } as const

export interface AuthBackend {
  base: string
  /** The proxy's URL (only with `proxy: true`). */
  proxy?: string
  stop: () => Promise<void>
}

/**
 * A second, REAL backend with authentication on: `modelmonitor users add` for an
 * admin, an editor and a viewer, then `modelmonitor api` on a free port (with
 * `proxy: true`, `modelmonitor up --demo`: proxy, worker, API and the demo model API).
 */
export async function startAuthBackend(name: string, authYaml: string[] = [], opts: { proxy?: boolean } = {}): Promise<AuthBackend> {
  const bin = modelmonitorBin()
  const dataDir = mkdtempSync(join(tmpdir(), `modelmonitor-e2e-${name}-`))
  for (const [user, role] of Object.entries(USERS)) {
    const added = spawnSync(bin, ['users', 'add', user, '--role', role, '--password-stdin', '--data-dir', dataDir], { input: PASSWORD, encoding: 'utf8' })
    if (added.status !== 0) throw new Error(`users add ${user}: ${added.stderr}`)
  }
  const config = join(dataDir, 'auth.yaml')
  writeFileSync(
    config,
    [
      'notification_channels:',
      '  ops-hook:',
      '    type: webhook',
      '    url: http://127.0.0.1:9/hook',
      '    allow_private: true',
      ...(authYaml.length ? ['auth:', ...authYaml.map((line) => `  ${line}`)] : []),
      '',
    ].join('\n'),
  )
  const port = await freePort()
  const results = resolve(WEB_DIR, 'test-results')
  mkdirSync(results, { recursive: true })
  const log = createWriteStream(join(results, `backend-${name}.log`))
  const common = ['--api', `127.0.0.1:${port}`, '--data-dir', dataDir, '--config', config]
  let proxy: string | undefined
  let args = ['api', ...common]
  if (opts.proxy) {
    const [proxyPort, demoPort] = [await freePort(), await freePort()]
    proxy = `http://127.0.0.1:${proxyPort}`
    args = ['up', '--demo', '--demo-port', String(demoPort), '--listen', `127.0.0.1:${proxyPort}`, ...common]
  }
  const child: ChildProcess = start(bin, args, (s) => log.write(s))
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`modelmonitor api exited with ${child.exitCode}; see test-results/backend-${name}.log`)
    try {
      if ((await fetch(`${base}/health`)).ok) break
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`backend ${name} not healthy after 60 s`)
    await new Promise((r) => setTimeout(r, 200))
  }
  return {
    base,
    proxy,
    stop: async () => {
      stop(child)
      await new Promise((r) => setTimeout(r, 1000))
      stop(child, 'SIGKILL')
      log.end()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
