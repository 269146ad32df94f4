// js-libp2p 2.x dialer (reference peer for p2pdiag): dials --target, pings
// over exactly the connection the dial returned, prints one result line per
// attempt and exits. A fresh node (fresh identity unless --key) per attempt.
//
// stdout, one line per attempt:
//   {"event":"result","attempt":1,"target":"...","ok":true,"connection_addr":"...","remote_peer":"12D3...",
//    "limited":false,"relayed":false,"webrtc":true,"rtt_ms":1.2,"rtts_ms":[1.2],"time_to_connection_ms":150}
//   {"event":"result","attempt":1,"target":"...","ok":false,"stage":"start|dial|ping","error":"..."}
// stderr: JSON log lines (connection_open / connection_close, dialed).
// Exit status: 0 when every attempt succeeded, 1 otherwise, 2 on bad usage.
//
// --keep-alive N: js-libp2p #3015 as an app meets it. ONE node puts the
// target's address in its peer store with a `keep-alive` tag and starts: the
// connection manager dials it, and its reconnect queue redials whenever the
// peer disconnects. @libp2p/webrtc 5.2.20 opens a relayed connection of its
// own for the signaling and closes it after the upgrade attempt, so with UDP
// blocked every attempt ends in a disconnect and a redial. One line per
// relayed connection to the peer that closed (a round), N rounds or
// --timeout-ms, then stop:
//   {"event":"round","round":1,"ok":false,"relayed_open_ms":12,"relayed_closed_ms":10020,"webrtc_opened":false}
// (webrtc_opened: a WebRTC connection opened in that round, which 5.2.20 also
// does when the signaling stream merely ended; ok:true, webrtc:true once
// identify ran over a WebRTC connection; times since the node started).
// Exit status 0 iff identify ran over a WebRTC connection.

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { KEEP_ALIVE } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { byteStream } from 'it-byte-stream'
import { createLibp2p } from 'libp2p'
import { describeConnection, emit, errorString, intFlag, loadOrCreateKey, log, logConnections, parseFlags, rtcConfiguration } from './common.mjs'

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_LENGTH = 32

const USAGE = `usage: node dialer.mjs --target MULTIADDR [--repeat 1] [--pings 1] [--timeout-ms 30000]
  [--interval-ms 0] [--webrtc-bind-address 127.0.0.1] [--key FILE] [--quiet]
  [--keep-alive N (one node, the peer tagged keep-alive: N rounds of the library's redial)]`

const flags = parseFlags({
  target: { type: 'string' },
  repeat: { type: 'string', default: '1' },
  pings: { type: 'string', default: '1' },
  'timeout-ms': { type: 'string', default: '30000' },
  'interval-ms': { type: 'string', default: '0' },
  'webrtc-bind-address': { type: 'string', default: '127.0.0.1' },
  key: { type: 'string' },
  'keep-alive': { type: 'string' },
  quiet: { type: 'boolean', default: false }
}, USAGE)

let target
try {
  target = multiaddr(flags.target ?? '')
} catch (err) {
  process.stderr.write(`invalid --target multiaddr: ${err.message}\n`)
  process.exit(2)
}
if (flags.target == null || target.getPeerId() == null) {
  process.stderr.write(`--target MULTIADDR ending in /p2p/PEER_ID is required\n${USAGE}\n`)
  process.exit(2)
}
const repeat = intFlag(flags, 'repeat', 1)
const pings = intFlag(flags, 'pings', 1)
const timeoutMs = intFlag(flags, 'timeout-ms', 1)
const intervalMs = intFlag(flags, 'interval-ms')
const keepAliveRounds = intFlag(flags, 'keep-alive', 1)
const since = (t0) => Math.round(performance.now() - t0)

let current
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    log('shutdown', { reason: sig })
    setTimeout(() => process.exit(1), 3000).unref()
    Promise.resolve(current?.stop()).catch(() => {}).finally(() => process.exit(1))
  })
}

/** The dialing node: TCP, WebSockets, circuit relay and WebRTC; no listen addresses. */
async function createNode (start = true) {
  const node = await createLibp2p({
    privateKey: await loadOrCreateKey(flags.key),
    addresses: { listen: [] },
    transports: [tcp(), webSockets(), circuitRelayTransport(), webRTC({ rtcConfiguration: rtcConfiguration(flags['webrtc-bind-address']) })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true })
    },
    start
  })
  current = node
  if (!flags.quiet) logConnections(node)
  return node
}

/** Stop a node; a stop that hangs is cut short after 3 s. */
const stopNode = (node) => Promise.race([node.stop().catch(() => {}), new Promise(resolve => setTimeout(resolve, 3000).unref())])

/** /ipfs/ping/1.0.0 on one given connection (not a dial of the peer); the round trip in ms. */
async function pingOnce (conn, signal) {
  const stream = await conn.newStream(PING_PROTOCOL, { runOnLimitedConnection: true, signal })
  try {
    const bytes = byteStream(stream)
    const data = crypto.getRandomValues(new Uint8Array(PING_LENGTH))
    const start = performance.now()
    const [, echo] = await Promise.all([bytes.write(data, { signal }), bytes.read({ bytes: PING_LENGTH, signal })])
    const rtt = performance.now() - start
    if (!Buffer.from(data).equals(Buffer.from(echo.subarray()))) throw new Error('ping reply did not match')
    return Math.round(rtt * 1000) / 1000
  } finally {
    await stream.close({ signal }).catch(err => stream.abort(err))
  }
}

async function attempt (n) {
  const res = { event: 'result', attempt: n, target: target.toString() }
  const signal = AbortSignal.timeout(timeoutMs)
  let stage = 'start'
  let node
  let conn
  try {
    node = await createNode()
    stage = 'dial'
    const t1 = performance.now()
    conn = await node.dial(target, { signal })
    res.time_to_connection_ms = since(t1)
    if (!flags.quiet) log('dialed', describeConnection(conn))
    stage = 'ping'
    res.rtts_ms = []
    for (let i = 0; i < pings; i++) res.rtts_ms.push(await pingOnce(conn, signal))
    return { ...res, ok: true, rtt_ms: res.rtts_ms[0], ...connectionFields(conn) }
  } catch (err) {
    return { ...res, ok: false, stage, error: errorString(err), ...(conn == null ? {} : connectionFields(conn)) }
  } finally {
    if (node != null) await stopNode(node)
  }
}

function connectionFields (conn) {
  const d = describeConnection(conn)
  return { connection_addr: d.remote_addr, remote_peer: d.remote_peer, limited: d.limited, relayed: d.relayed, webrtc: d.webrtc }
}

/** --keep-alive: the library's own redial of a keep-alive peer, N rounds. */
async function keepAlive (rounds) {
  const node = await createNode(false)
  const peer = target.getPeerId()
  const t0 = performance.now()
  const opened = new Map()
  let round = 0
  let webrtcOpened = false
  let upgraded = false
  const done = Promise.withResolvers()
  node.addEventListener('connection:open', ({ detail: conn }) => {
    if (conn.remotePeer.toString() !== peer) return
    if (describeConnection(conn).webrtc) {
      // 5.2.20 also "connects" when the signaling stream just ends (readCandidatesUntilConnected
      // takes an ended stream for success), so only identify over it counts as upgraded
      webrtcOpened = true
    } else {
      opened.set(conn.id, since(t0))
    }
  })
  node.addEventListener('peer:identify', ({ detail }) => {
    if (detail.peerId.toString() !== peer || !describeConnection(detail.connection).webrtc) return
    upgraded = true
    emit({ event: 'round', round: round + 1, ok: true, webrtc: true, identified_ms: since(t0) })
    done.resolve()
  })
  node.addEventListener('connection:close', ({ detail: conn }) => {
    if (!opened.has(conn.id) || upgraded) return
    round += 1
    emit({ event: 'round', round, ok: false, relayed_open_ms: opened.get(conn.id), relayed_closed_ms: since(t0), webrtc_opened: webrtcOpened })
    webrtcOpened = false
    if (round >= rounds) done.resolve()
  })
  await node.peerStore.merge(peerIdFromString(peer), { multiaddrs: [target], tags: { [KEEP_ALIVE]: { value: 1 } } })
  await node.start()
  setTimeout(() => done.resolve(), timeoutMs).unref()
  await done.promise
  await stopNode(node)
  return upgraded
}

if (keepAliveRounds != null) {
  process.exit(await keepAlive(keepAliveRounds) ? 0 : 1)
}
let allOk = true
for (let i = 1; i <= repeat; i++) {
  const result = await attempt(i)
  allOk &&= result.ok
  emit(result)
  if (i < repeat && intervalMs > 0) await new Promise(resolve => setTimeout(resolve, intervalMs))
}
process.exit(allOk ? 0 : 1)
