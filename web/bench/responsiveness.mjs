// Dashboard responsiveness with many services: frames per second and long tasks
// while live snapshots arrive. Usage: node bench/responsiveness.mjs URL [seconds]
import { chromium } from '@playwright/test'

const url = process.argv[2]
const seconds = Number(process.argv[3] ?? 10)
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const results = {}
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
  for (const [name, path] of [['overview', '/'], ['service', '/services/model-00']]) {
    await page.goto(url + path)
    await page.waitForTimeout(3000) // connected, first snapshots drawn
    results[name] = await page.evaluate(async (ms) => {
      const longTasks = []
      const observer = new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) longTasks.push(entry.duration)
      })
      observer.observe({ type: 'longtask', buffered: false })
      let frames = 0
      let worstFrame = 0
      let last = performance.now()
      const started = last
      await new Promise((done) => {
        const tick = (now) => {
          frames += 1
          worstFrame = Math.max(worstFrame, now - last)
          last = now
          if (now - started < ms) requestAnimationFrame(tick)
          else done()
        }
        requestAnimationFrame(tick)
      })
      observer.disconnect()
      return {
        fps: (frames * 1000) / (performance.now() - started),
        worst_frame_ms: worstFrame,
        long_tasks: longTasks.length,
        longest_task_ms: longTasks.length ? Math.max(...longTasks) : 0,
        cards: document.querySelectorAll('[data-testid="service-card"], [data-testid="service-row"]').length,
      }
    }, seconds * 1000)
  }
} finally {
  await browser.close()
}
console.log(JSON.stringify(results))
