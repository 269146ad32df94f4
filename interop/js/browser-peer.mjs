// js-libp2p peer running in headless Chromium (reference peer for p2pdiag):
// bundles browser/peer.js with esbuild, serves it from a tiny HTTP server on
// 127.0.0.1, starts Chromium (Debian's /usr/bin/chromium via playwright-core,
// see scripts/setup-chromium.sh) and loads the page. The page's node reserves
// a slot on --relay (the js relay's /ws address; a browser cannot dial plain
// TCP) and, unless --no-webrtc, listens on /webrtc (private-to-private), with
// the ICE servers of --ice-servers (default none).
//
// The page is served from 127.0.0.1 of the network namespace it runs in, so
// in a lab LAN (ip netns exec) nothing leaves that namespace but the relay's
// WebSocket and WebRTC/STUN traffic.
//
// stdout: exactly one line once the reservation is in place:
//   {"event":"ready","peer_id":"12D3...","relay_peer_id":"12D3...","webrtc":true,
//    "addrs":["<relay ws>/p2p-circuit/p2p/ID","<relay ws>/p2p-circuit/webrtc/p2p/ID",...],
//    "browser":"Chromium 156.0.8078.79","timings":{...ms}}
// stderr: JSON log lines: the page's own (connection_open / connection_close,
//   self_peer_update, unhandled_rejection), page_console (other console
//   messages, e.g. --libp2p-debug output), page_error, browser_launched, ...
// Exits on SIGTERM, SIGINT or stdin EOF (unless --ignore-stdin), closing the
// browser. Exits 1 with a "fatal" log if the reservation is not in place
// within --timeout-ms or the browser/page dies.

import { createWriteStream } from 'node:fs'
import { createServer } from 'node:http'
import { access, constants, readFile } from 'node:fs/promises'
import { dirname, join, resolve as resolvePath } from 'node:path'
import { format } from 'node:util'
import { fileURLToPath } from 'node:url'
import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import * as esbuild from 'esbuild'
import { chromium } from 'playwright-core'
import { emit, errorString, exitOnShutdown, iceServersFlag, intFlag, loadOrCreateKey, log, parseFlags } from './common.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const PAGE_DIR = join(HERE, 'browser')

const USAGE = `usage: node browser-peer.mjs --relay MULTIADDR(/ws/p2p/RELAY_ID) [--no-webrtc]
  [--ice-servers '[{"urls":"stun:HOST:PORT"}]' (default [])] [--ice-transport-policy all|relay] [--timeout-ms 20000] [--key FILE] [--inbound-connection-threshold 100]
  [--chromium /usr/bin/chromium] [--libp2p-debug NAMESPACES]
  [--chromium-log FILE [--chromium-vmodule PATTERNS]] [--webrtc-internals FILE]
  [--dial MULTIADDR [--dial-timeout-ms 15000]] [--console-capture FILE]
  [--topic TOPIC ... [--mesh MULTIADDR(/ws/p2p/ID) ...]] [--ignore-stdin]`

// Without the background-networking/component-update/sync switches Chromium
// keeps trying to reach its services, and this machine's closed network
// refuses those connections. QUIC off: nothing here speaks it.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Host candidates as plain addresses, not <uuid>.local names: resolving those takes mDNS
  // multicast on the machine's network, and tests keep all traffic on this machine.
  '--disable-features=WebRtcHideLocalIpsWithMdns'
]

const t0 = performance.now()
const since = (t) => Math.round(performance.now() - t)

const flags = parseFlags({
  relay: { type: 'string' },
  'no-webrtc': { type: 'boolean', default: false },
  'ice-servers': { type: 'string', default: '[]' },
  'ice-transport-policy': { type: 'string' },
  'timeout-ms': { type: 'string', default: '20000' },
  key: { type: 'string' },
  'inbound-connection-threshold': { type: 'string', default: '100' },
  chromium: { type: 'string', default: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
  'libp2p-debug': { type: 'string' },
  'chromium-log': { type: 'string' },
  'chromium-vmodule': { type: 'string' },
  'webrtc-internals': { type: 'string' },
  'ignore-stdin': { type: 'boolean', default: false },
  dial: { type: 'string' },
  'dial-timeout-ms': { type: 'string', default: '15000' },
  'console-capture': { type: 'string' },
  // GossipSub: subscribe to each --topic, connected (WebSocket) to each --mesh node of a fleet
  topic: { type: 'string', multiple: true, default: [] },
  mesh: { type: 'string', multiple: true, default: [] }
}, USAGE)

if (flags.relay == null) {
  process.stderr.write(`--relay is required\n${USAGE}\n`)
  process.exit(2)
}
let relayPeerId
try {
  relayPeerId = multiaddr(flags.relay).getComponents().findLast(c => c.name === 'p2p')?.value
} catch (err) {
  process.stderr.write(`invalid --relay multiaddr: ${err.message}\n`)
  process.exit(2)
}
if (relayPeerId == null) {
  process.stderr.write('--relay must end with /p2p/<relay peer id>\n')
  process.exit(2)
}
const timeoutMs = intFlag(flags, 'timeout-ms', { min: 1 })
const inboundThreshold = intFlag(flags, 'inbound-connection-threshold', { min: 1 })
const iceServers = iceServersFlag(flags)
const dialTimeoutMs = intFlag(flags, 'dial-timeout-ms', { min: 1 })
const iceTransportPolicy = flags['ice-transport-policy']
if (iceTransportPolicy != null && !['all', 'relay'].includes(iceTransportPolicy)) {
  process.stderr.write(`--ice-transport-policy must be all or relay\n${USAGE}\n`)
  process.exit(2)
}

let server
let browser
let page
let internals // chrome://webrtc-internals, open before the node starts (--webrtc-internals FILE)
let stopping = false

/**
 * The dump a user downloads from chrome://webrtc-internals ("Create a WebRTC-Internals dump", then
 * 'Download the "webrtc-internals dump"', gzipped as the page's checkbox is by default): the
 * page's own button is clicked and its download kept, so the file is what Chromium writes.
 */
async function saveInternals () {
  const file = resolvePath(flags['webrtc-internals'])
  await internals.click('summary:has-text("Create a WebRTC-Internals dump")')
  const [download] = await Promise.all([
    internals.waitForEvent('download', { timeout: 1500 }),
    internals.click('button:has-text("webrtc-internals dump")', { timeout: 1500 })
  ])
  await download.saveAs(file)
  log('webrtc_internals_saved', { file, name: download.suggestedFilename() })
}

// what exitOnShutdown stops: the page's node, then the browser, then the server
const stopper = {
  async stop () {
    stopping = true
    if (internals != null && !internals.isClosed()) {
      await saveInternals().catch(err => log('webrtc_internals_error', { error: errorString(err) }))
    }
    if (page != null && !page.isClosed()) {
      await Promise.race([
        page.evaluate(() => window.p2pdiag?.stop()).catch(() => {}),
        new Promise(resolve => setTimeout(resolve, 1000).unref())
      ])
    }
    await browser?.close().catch(() => {})
    await stopper.captured?.()
    server?.close()
  }
}
const shutdown = exitOnShutdown(() => stopper, { ignoreStdin: flags['ignore-stdin'] })

async function fatal (error) {
  if (stopping) return
  log('fatal', { error })
  await stopper.stop()
  process.exit(1)
}

/**
 * Bundle browser/peer.js. It imports a few pure helpers from ../common.mjs,
 * whose node:* imports (used only by the Node-side helpers) become empty
 * modules here.
 */
async function bundle () {
  const stubNodeImportsOfCommon = {
    name: 'stub-node-imports-of-common',
    setup (build) {
      build.onResolve({ filter: /^node:/ }, (args) =>
        args.importer.endsWith('common.mjs') ? { path: args.path, namespace: 'node-stub' } : undefined)
      build.onLoad({ filter: /.*/, namespace: 'node-stub' }, () => ({ contents: 'module.exports = {}', loader: 'js' }))
    }
  }
  const result = await esbuild.build({
    entryPoints: [join(PAGE_DIR, 'peer.js')],
    absWorkingDir: HERE,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
    plugins: [stubNodeImportsOfCommon]
  })
  return result.outputFiles[0].contents
}

/**
 * --console-capture FILE: every console message of the page as DevTools' console receives it, one
 * JSON line each: Runtime.consoleAPICalled over a CDP session of the page (the event DevTools'
 * console renders, with its wall-clock timestamp and the arguments as remote objects with their
 * previews), before any formatting. tests/record/jslog_browser.py renders them as the console
 * shows them.
 */
async function captureConsole (target, file) {
  const out = createWriteStream(resolvePath(file))
  const cdp = await target.context().newCDPSession(target)
  const slim = (a) => {
    const o = { type: a.type }
    for (const k of ['subtype', 'className', 'value', 'unserializableValue', 'description', 'preview']) {
      if (a[k] !== undefined) o[k] = a[k]
    }
    return o
  }
  cdp.on('Runtime.consoleAPICalled', (ev) => {
    const frame = ev.stackTrace?.callFrames?.[0]
    out.write(JSON.stringify({
      timestamp: ev.timestamp,
      type: ev.type,
      args: ev.args.map(slim),
      frame: frame == null ? null : { url: frame.url, line: frame.lineNumber, column: frame.columnNumber }
    }) + '\n')
  })
  await cdp.send('Runtime.enable')
  stopper.captured = () => new Promise(resolve => out.end(resolve))
}

function serve (files) {
  return new Promise((resolve, reject) => {
    const srv = createServer((req, res) => {
      const file = files[new URL(req.url, 'http://127.0.0.1').pathname]
      if (file == null) {
        res.writeHead(404).end()
        return
      }
      res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body)
    })
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => resolve(srv))
  })
}

try {
  let t = performance.now()
  const script = await bundle()
  const html = await readFile(join(PAGE_DIR, 'index.html'))
  const bundleMs = since(t)
  server = await serve({
    '/': { type: 'text/html; charset=utf-8', body: html },
    '/peer.js': { type: 'text/javascript; charset=utf-8', body: script }
  })
  const url = `http://127.0.0.1:${server.address().port}/`
  log('page_served', { url, bundle_bytes: script.byteLength, bundle_ms: bundleMs })

  // checked here: a failed launch leaves playwright's temp dirs behind
  await access(flags.chromium, constants.X_OK).catch(() => {
    throw new Error(`no executable ${flags.chromium} (install it with scripts/setup-chromium.sh)`)
  })
  t = performance.now()
  const args = [...CHROMIUM_ARGS]
  if (flags['chromium-log'] != null) {
    // Chromium's own log (e.g. --chromium-vmodule '*/p2p/base/*=1,*dtls*=2')
    args.push('--enable-logging', `--log-file=${resolvePath(flags['chromium-log'])}`)
    if (flags['chromium-vmodule'] != null) args.push(`--vmodule=${flags['chromium-vmodule']}`)
  }
  // launch() gives Chromium a fresh, empty --user-data-dir of its own (a temp
  // dir, removed on close); passing --user-data-dir in args is refused
  browser = await chromium.launch({
    executablePath: flags.chromium,
    headless: true,
    args,
    timeout: 30000,
    // we handle SIGTERM/SIGINT ourselves (stop the page's node first)
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false
  })
  const browserStartMs = since(t)
  const browserName = `Chromium ${browser.version()}`
  log('browser_launched', { browser: browserName, executable: flags.chromium, ms: browserStartMs })
  browser.on('disconnected', () => { void fatal('browser disconnected') })

  if (flags['webrtc-internals'] != null) {
    // opened first: the page lists only the peer connections made while it is open
    internals = await browser.newPage()
    await internals.goto('chrome://webrtc-internals', { timeout: 15000 })
  }
  page = await browser.newPage()
  page.on('console', (msg) => {
    const text = msg.text()
    if (text.startsWith('{"ts":')) {
      process.stderr.write(text + '\n') // the page's own JSON log line
    } else if (text.includes('%')) {
      // a format string (e.g. @libp2p/logger's, with %c colours): format it here
      Promise.all(msg.args().map(a => a.jsonValue().catch(() => String(a))))
        .then(values => log('page_console', { level: msg.type(), text: format(...values) }))
        .catch(() => log('page_console', { level: msg.type(), text }))
    } else {
      log('page_console', { level: msg.type(), text })
    }
  })
  if (flags['console-capture'] != null) await captureConsole(page, flags['console-capture'])
  page.on('pageerror', (err) => log('page_error', { error: errorString(err) }))
  page.on('crash', () => { void fatal('page crashed') })

  const ready = Promise.withResolvers()
  await page.exposeFunction('p2pdiagReport', (obj) => ready.resolve(obj))
  const key = flags.key != null ? Array.from(privateKeyToProtobuf(await loadOrCreateKey(flags.key))) : null
  await page.addInitScript(({ config, debug }) => {
    window.P2PDIAG_CONFIG = config
    // @libp2p/logger reads its namespaces from localStorage in a browser
    if (debug != null) localStorage.setItem('debug', debug)
    else localStorage.removeItem('debug')
  }, {
    config: {
      relay: flags.relay,
      relayPeerId,
      webrtc: !flags['no-webrtc'],
      iceServers,
      iceTransportPolicy,
      key,
      timeoutMs,
      inboundConnectionThreshold: inboundThreshold,
      topics: flags.topic,
      mesh: flags.mesh
    },
    debug: flags['libp2p-debug'] ?? null
  })

  t = performance.now()
  await page.goto(url, { waitUntil: 'load', timeout: 15000 })
  const pageLoadMs = since(t)

  const result = await Promise.race([
    ready.promise,
    // the page has its own timeout; this one covers a page that never reports
    new Promise(resolve => setTimeout(() => resolve({ event: 'fatal', error: `page gave no ready/fatal report within ${timeoutMs + 5000} ms` }), timeoutMs + 5000).unref())
  ])
  if (result.event !== 'ready') {
    await fatal(result.error)
  } else {
    const { node_start_ms: nodeStartMs, addrs_ms: addrsMs, ...fields } = result
    emit({
      ...fields,
      browser: browserName,
      timings: {
        bundle_ms: bundleMs,
        browser_start_ms: browserStartMs,
        page_load_ms: pageLoadMs,
        node_start_ms: nodeStartMs,
        addrs_ms: addrsMs,
        total_ms: since(t0)
      }
    })
    if (flags.dial != null) {
      // the page dials (the browser as the dialing node) and pings; the result is a log line
      const dialed = await page.evaluate(({ target, ms }) => window.p2pdiag.dial(target, ms),
        { target: flags.dial, ms: dialTimeoutMs })
      log('dial_result', dialed)
    }
  }
} catch (err) {
  await fatal(errorString(err))
}

void shutdown
