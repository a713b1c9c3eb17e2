import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'

export const WEB_DIR = resolve(import.meta.dirname, '..')
export const REPO_DIR = resolve(WEB_DIR, '..')

/** The modelmonitor CLI: $MODELMONITOR_BIN, else the repository's .venv. */
export function modelmonitorBin(): string {
  const bin = process.env.MODELMONITOR_BIN ?? resolve(REPO_DIR, '.venv/bin/modelmonitor')
  if (!existsSync(bin)) throw new Error(`modelmonitor CLI not found at ${bin} (run "make" at the repository root, or set MODELMONITOR_BIN)`)
  return bin
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.once('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => res(port))
    })
  })
}

/** Start a process in its own process group so the whole tree can be stopped. */
export function start(cmd: string, args: string[], log: (chunk: string) => void): ChildProcess {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } })
  child.stdout?.on('data', (d: Buffer) => log(d.toString()))
  child.stderr?.on('data', (d: Buffer) => log(d.toString()))
  return child
}

export function stop(child: ChildProcess | null | undefined, signal: NodeJS.Signals = 'SIGTERM'): void {
  if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try {
      child.kill(signal)
    } catch {
      /* already gone */
    }
  }
}

let traffic: ChildProcess | null = null

/** Drive load through the proxy with `modelmonitor demo traffic` (restarted when it finished). */
export function ensureTraffic(rps = 20, duration = 60): void {
  if (traffic && traffic.exitCode === null && traffic.signalCode === null) return
  const target = process.env.MM_PROXY_URL
  if (!target) throw new Error('MM_PROXY_URL is not set: the global setup did not run')
  traffic = start(modelmonitorBin(), ['demo', 'traffic', '--target', target, '--rps', String(rps), '--duration', String(duration)], () => {})
}

export function stopTraffic(): void {
  stop(traffic)
  traffic = null
}

/** Make the demo model API fail (`error_rate` 0..1) through its `POST /admin/chaos`. */
export async function setChaos(errorRate: number): Promise<void> {
  const demo = process.env.MM_DEMO_URL
  if (!demo) throw new Error('MM_DEMO_URL is not set: the global setup did not run')
  const res = await fetch(`${demo}/admin/chaos`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ error_rate: errorRate }),
  })
  if (!res.ok) throw new Error(`POST ${demo}/admin/chaos: HTTP ${res.status}`)
}
