// Open a p2pdiag HTML report in headless Chromium, as a person would from an email attachment
// (a file:// URL, no network), and save a full-page screenshot of it.
//
//   node scripts/report-screenshot.mjs report.html report.png [--chromium /usr/bin/chromium] [--width 1100]
//        [--section timeline]   (only that part of the page: timeline, verdicts, input-1 ...)
//        [--print]              (as printed: the page's print CSS, at A4 width)
//
// Run it with the Node 22 of interop/js (scripts/setup-js.sh prints its path); playwright-core is
// taken from interop/js/node_modules. Every request other than the report itself is refused and
// counted. stdout: one JSON line of what the page showed (for tests/interop/test_report_chromium.py):
// the console errors, the requests refused, the verdict headlines, the timeline SVGs and their shapes.
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join, resolve } from 'node:path'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(join(here, '..', 'interop', 'js', 'package.json'))
const { chromium } = require('playwright-core')

const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return fallback
  const [value] = args.splice(i, 2).slice(1)
  return value
}
const executablePath = flag('chromium', '/usr/bin/chromium')
const width = Number(flag('width', '1100'))
const section = flag('section', null)
const print = args.includes('--print') && args.splice(args.indexOf('--print'), 1)
const [input, output] = args
if (!input || !output) {
  process.stderr.write('usage: report-screenshot.mjs REPORT.html OUT.png [--chromium PATH] [--width PX]\n')
  process.exit(2)
}

const url = pathToFileURL(resolve(input)).href
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  timeout: 30000
})
const seen = { console_errors: [], page_errors: [], requests: [] }
try {
  const context = await browser.newContext({ viewport: { width, height: 800 }, offline: true })
  const page = await context.newPage()
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') seen.console_errors.push(`${msg.type()}: ${msg.text()}`)
  })
  page.on('pageerror', (err) => seen.page_errors.push(String(err)))
  page.on('request', (req) => { if (req.url() !== url) seen.requests.push(req.url()) })
  await context.route('**/*', (route) => route.request().url() === url ? route.continue() : route.abort())
  if (print) {
    await page.emulateMedia({ media: 'print' })
    await page.setViewportSize({ width: 794, height: 1123 }) // A4 at 96 dpi
  }
  await page.goto(url, { waitUntil: 'load', timeout: 15000 })
  const shown = await page.evaluate(() => ({
    title: document.title,
    headlines: [...document.querySelectorAll('.verdict .headline')].map(e => e.textContent.trim()),
    scripts: document.querySelectorAll('script').length,
    svgs: [...document.querySelectorAll('svg.timeline')].map(svg => {
      const box = svg.getBoundingClientRect()
      const count = (sel) => svg.querySelectorAll(sel).length
      return {
        id: svg.id,
        width: box.width,
        height: box.height,
        lanes: count('rect.lane'),
        spans: [...svg.querySelectorAll('rect.span')].map(r => r.getAttribute('class')),
        marks: [...svg.querySelectorAll('g.mark')].map(g => g.getAttribute('class')),
        lane_labels: [...svg.querySelectorAll("text.lane-label")].map(t => [...t.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join("")),
        bytes: count('polyline.bytes')
      }
    }),
    findings: document.querySelectorAll('.finding').length,
    injected: document.querySelectorAll('[data-injected], img, iframe, object, embed').length
  }))
  if (section != null) await page.locator(`#${section}`).screenshot({ path: output })
  else await page.screenshot({ path: output, fullPage: true })
  process.stdout.write(JSON.stringify({ url, ...seen, ...shown }) + '\n')
} finally {
  await browser.close()
}
