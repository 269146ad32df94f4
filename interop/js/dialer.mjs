// js-libp2p dialer (reference peer for p2pdiag): dials --target, pings it
// over exactly the connection that the dial returned, prints one result line
// per attempt and exits. A fresh libp2p node (fresh identity) is made for
// every attempt of --repeat N.
//
// stdout, one line per attempt:
//   {"event":"result","ok":true,"attempt":1,"target":"...","connection_addr":"...",
//    "remote_peer":"12D3...","limited":false,"webrtc":true,"relayed":false,
//    "rtt_ms":1,"rtts_ms":[1],"time_to_connection_ms":123,"node_start_ms":5}
//   {"event":"result","ok":false,"attempt":1,"target":"...","error":"...","stage":"dial"|"ping"|"start"}
// stderr: JSON log lines (connection_open / connection_close, ...).
// Exit status: 0 when every attempt succeeded, 1 otherwise, 2 on bad usage.
//
// --loop N behaves like an app with a naive retry: ONE node (one peer id) dials
// --target (a .../p2p-circuit/webrtc/... address), and when the WebRTC upgrade
// fails it hangs up on the peer (closing the relayed connection, as apps and
// js-libp2p #3015 did), waits --interval-ms and dials again, up to N rounds or
// until a round upgrades. stdout, one line per round:
//   {"event":"round","round":1,"ok":false,"stage":"dial","error":"...","started_ms":0,
//    "ended_ms":6012,"hung_up":1}
//   {"event":"round","round":3,"ok":true,"webrtc":true,"rtt_ms":1.1,"started_ms":...,"ended_ms":...}
// started_ms/ended_ms are since the node started; hung_up is how many
// connections to the peer hangUp closed. Exit status 0 iff the last round upgraded.

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { describeConnection, emit, errorString, intFlag, loadOrCreateKey, log, logConnections, parseFlags, rtcConfiguration } from './common.mjs'

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_LENGTH = 32

const USAGE = `usage: node dialer.mjs --target MULTIADDR [--repeat 1] [--pings 1] [--ping-interval-ms 0]
  [--timeout-ms 30000] [--interval-ms 0] [--webrtc-bind-address 127.0.0.1] [--key FILE] [--quiet]
  [--loop N (one node; on a failed upgrade hang up and dial again, N rounds)]
  [--handle PROTOCOL (an echo handler for it with js-libp2p's default options: not on limited connections)]`

const flags = parseFlags({
  target: { type: 'string' },
  repeat: { type: 'string', default: '1' },
  pings: { type: 'string', default: '1' },
  'ping-interval-ms': { type: 'string', default: '0' },
  'timeout-ms': { type: 'string', default: '30000' },
  'interval-ms': { type: 'string', default: '0' },
  'webrtc-bind-address': { type: 'string', default: '127.0.0.1' },
  key: { type: 'string' },
  loop: { type: 'string' },
  quiet: { type: 'boolean', default: false },
  handle: { type: 'string' }
}, USAGE)

if (flags.target == null) {
  process.stderr.write(`--target is required\n${USAGE}\n`)
  process.exit(2)
}
let target
try {
  target = multiaddr(flags.target)
} catch (err) {
  process.stderr.write(`invalid --target multiaddr: ${err.message}\n`)
  process.exit(2)
}
const repeat = intFlag(flags, 'repeat', { min: 1 })
const pings = intFlag(flags, 'pings', { min: 1 })
const timeoutMs = intFlag(flags, 'timeout-ms', { min: 1 })
const intervalMs = intFlag(flags, 'interval-ms')
const pingIntervalMs = intFlag(flags, 'ping-interval-ms')
const loopRounds = intFlag(flags, 'loop', { min: 1 })
let loopPeer
if (loopRounds != null) {
  try {
    loopPeer = peerIdFromString(target.toString().split('/p2p/').pop())
  } catch (err) {
    process.stderr.write(`--loop needs a --target that ends in /p2p/PEER_ID: ${err.message}\n`)
    process.exit(2)
  }
}

let current
let interrupted = false
const onSignal = (sig) => {
  interrupted = true
  log('shutdown', { reason: sig })
  const force = setTimeout(() => process.exit(1), 3000)
  force.unref()
  Promise.resolve(current?.stop()).catch(() => {}).finally(() => process.exit(1))
}
process.on('SIGTERM', () => onSignal('SIGTERM'))
process.on('SIGINT', () => onSignal('SIGINT'))

/** /ipfs/ping/1.0.0 round trip on one given connection; returns rtt in ms. */
async function pingOnce (conn, signal) {
  const stream = await conn.newStream(PING_PROTOCOL, { runOnLimitedConnection: true, signal })
  try {
    const data = crypto.getRandomValues(new Uint8Array(PING_LENGTH))
    const received = []
    let receivedLen = 0
    const done = Promise.withResolvers()
    const onAbort = () => done.reject(signal.reason ?? new Error('ping aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    const onMessage = (evt) => {
      const chunk = evt.data.subarray()
      received.push(chunk)
      receivedLen += chunk.byteLength
      if (receivedLen >= PING_LENGTH) done.resolve()
    }
    const onClose = (evt) => {
      if (receivedLen < PING_LENGTH) done.reject(evt.error ?? new Error('stream closed before ping reply'))
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onClose)
    const start = performance.now()
    stream.send(data)
    try {
      await done.promise
    } finally {
      signal.removeEventListener('abort', onAbort)
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
    }
    const rtt = performance.now() - start
    const echo = Buffer.concat(received).subarray(0, PING_LENGTH)
    if (!Buffer.from(data).equals(echo)) throw new Error('ping reply did not match')
    return Math.round(rtt * 1000) / 1000
  } finally {
    await stream.close({ signal }).catch(() => stream.abort(new Error('close failed')))
  }
}

/** The dialing node: TCP, WebSockets, circuit relay and WebRTC; no listen addresses. */
async function createNode (privateKey) {
  return createLibp2p({
    privateKey,
    addresses: { listen: [] },
    transports: [
      tcp(),
      webSockets(),
      circuitRelayTransport(),
      webRTC({ rtcConfiguration: rtcConfiguration(flags['webrtc-bind-address']) })
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // allow everything (this is the Node default anyway; explicit so the
    // same config can be bundled for a browser, whose default gater refuses
    // insecure ws and private addresses)
    connectionGater: { denyDialMultiaddr: async () => false },
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true })
    }
  })
}

/**
 * --handle PROTOCOL: an app protocol registered as an app usually does, without
 * runOnLimitedConnection, so js-libp2p refuses its streams on a relayed (limited) connection.
 */
async function handleApp (node) {
  if (flags.handle == null) return
  await node.handle(flags.handle, (stream) => {
    stream.addEventListener('message', (evt) => stream.send(evt.data))
    stream.addEventListener('remoteCloseWrite', () => { stream.close().catch(() => {}) })
  })
}

/** Stop a node; a stop that hangs is cut short after 3 s. */
async function stopNode (node) {
  await Promise.race([
    node.stop().catch(() => {}),
    new Promise(resolve => setTimeout(resolve, 3000).unref())
  ])
}

async function attempt (n) {
  const base = { event: 'result', attempt: n, target: target.toString() }
  const signal = AbortSignal.timeout(timeoutMs)
  let stage = 'start'
  let node
  let connected
  try {
    const t0 = performance.now()
    node = await createNode(await loadOrCreateKey(flags.key))
    current = node
    if (!flags.quiet) logConnections(node)
    await handleApp(node)
    const nodeStartMs = performance.now() - t0

    stage = 'dial'
    const t1 = performance.now()
    const conn = await node.dial(target, { signal })
    const timeToConnection = performance.now() - t1
    connected = { conn, timeToConnection, at: performance.now() }
    if (!flags.quiet) log('dialed', describeConnection(conn))

    stage = 'ping'
    const rtts = []
    for (let i = 0; i < pings; i++) {
      if (i > 0 && pingIntervalMs > 0) {
        await new Promise(resolve => setTimeout(resolve, pingIntervalMs))
      }
      try {
        rtts.push(await pingOnce(conn, signal))
      } catch (err) {
        err.pingsDone = rtts
        throw err
      }
    }
    const d = describeConnection(conn)
    return {
      ...base,
      ok: true,
      connection_addr: d.remote_addr,
      remote_peer: d.remote_peer,
      limited: d.limited,
      relayed: d.relayed,
      webrtc: d.webrtc,
      rtt_ms: rtts[0],
      rtts_ms: rtts,
      time_to_connection_ms: Math.round(timeToConnection * 1000) / 1000,
      node_start_ms: Math.round(nodeStartMs * 1000) / 1000
    }
  } catch (err) {
    const res = { ...base, ok: false, stage, error: errorString(err) }
    if (connected != null) {
      const d = describeConnection(connected.conn)
      Object.assign(res, {
        connection_addr: d.remote_addr,
        limited: d.limited,
        webrtc: d.webrtc,
        time_to_connection_ms: Math.round(connected.timeToConnection * 1000) / 1000,
        connection_open_ms: Math.round(performance.now() - connected.at)
      })
    }
    if (err?.pingsDone != null) {
      // how far we got before the connection died (e.g. a relay limit)
      res.rtts_ms = err.pingsDone
    }
    return res
  } finally {
    if (node != null) await stopNode(node)
    current = undefined
  }
}

/** --loop: one node dials, and on a failed upgrade hangs up and dials again (a naive app retry). */
async function loop (rounds) {
  const t0 = performance.now()
  const since = () => Math.round(performance.now() - t0)
  const peer = loopPeer
  let node
  try {
    node = await createNode(await loadOrCreateKey(flags.key))
  } catch (err) {
    emit({ event: 'round', round: 1, ok: false, stage: 'start', error: errorString(err) })
    return false
  }
  current = node
  if (!flags.quiet) logConnections(node)
  let upgraded = false
  try {
    for (let n = 1; n <= rounds && !interrupted && !upgraded; n++) {
      const row = { event: 'round', round: n, started_ms: since() }
      const signal = AbortSignal.timeout(timeoutMs)
      let stage = 'dial'
      try {
        const conn = await node.dial(target, { signal })
        if (!describeConnection(conn).webrtc) throw new Error(`not upgraded: ${conn.remoteAddr}`)
        stage = 'ping'
        Object.assign(row, { ok: true, webrtc: true, rtt_ms: await pingOnce(conn, signal) })
        upgraded = true
      } catch (err) {
        Object.assign(row, { ok: false, stage, error: errorString(err) })
        // what the app does about a failed upgrade: drop the relayed connection and try again
        const open = node.getConnections(peer)
        row.hung_up = open.length
        if (open.length > 0) {
          await node.hangUp(peer, { signal: AbortSignal.timeout(3000) }).catch(() => {})
        }
      }
      row.ended_ms = since()
      if (interrupted) break
      emit(row)
      if (!upgraded && n < rounds && intervalMs > 0) {
        await new Promise(resolve => setTimeout(resolve, intervalMs))
      }
    }
  } finally {
    await stopNode(node)
    current = undefined
  }
  return upgraded
}

if (loopRounds != null) {
  process.exit(await loop(loopRounds) ? 0 : 1)
}

let allOk = true
for (let i = 1; i <= repeat && !interrupted; i++) {
  const result = await attempt(i)
  if (interrupted) break
  allOk &&= result.ok
  emit(result)
  if (i < repeat && intervalMs > 0) {
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}
process.exit(allOk ? 0 : 1)
