// js-libp2p peer behind a Circuit Relay v2 relay (reference peer for p2pdiag).
//
// Makes a reservation on --relay (listens on <relay>/p2p-circuit) and, unless
// --no-webrtc, also listens on /webrtc (WebRTC private-to-private, signalled
// over the relayed connection via /webrtc-signaling/0.0.1).
//
// stdout: exactly one line once the reservation is in place and the circuit
// addresses are known:
//   {"event":"ready","peer_id":"12D3...","relay_peer_id":"12D3...","webrtc":true,
//    "addrs":[".../p2p-circuit/p2p/ID", ".../p2p-circuit/webrtc/p2p/ID", ...]}
// stderr: JSON log lines (connection_open / connection_close with remote addr,
//   direction, limited/relayed/webrtc; self_peer_update; ...).
// Exits on SIGTERM, SIGINT or stdin EOF (unless --ignore-stdin). Exits 1 if
// the reservation is not in place within --timeout-ms.

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { emit, errorString, exitOnShutdown, iceServersFlag, intFlag, loadOrCreateKey, log, logConnections, parseFlags, rtcConfiguration } from './common.mjs'

const USAGE = `usage: node listener.mjs --relay MULTIADDR(/p2p/RELAY_ID) [--no-webrtc]
  [--tcp-port N] [--ws-port N] [--host 127.0.0.1] [--webrtc-bind-address 127.0.0.1] [--ice-servers JSON] [--key FILE]
  [--inbound-connection-threshold 100] [--timeout-ms 20000] [--ignore-stdin]
  [--open PROTOCOL (open a stream of it to every peer that connects, limited connections too)]`

const flags = parseFlags({
  relay: { type: 'string' },
  'no-webrtc': { type: 'boolean', default: false },
  host: { type: 'string', default: '127.0.0.1' },
  'tcp-port': { type: 'string' },
  'ws-port': { type: 'string' },
  'webrtc-bind-address': { type: 'string', default: '127.0.0.1' },
  // RTCIceServer list, e.g. '[{"urls":"stun:203.0.113.3:3478"}]'; none by default
  'ice-servers': { type: 'string', default: '[]' },
  key: { type: 'string' },
  'inbound-connection-threshold': { type: 'string', default: '100' },
  'timeout-ms': { type: 'string', default: '20000' },
  'ignore-stdin': { type: 'boolean', default: false },
  open: { type: 'string' }
}, USAGE)

if (flags.relay == null) {
  process.stderr.write(`--relay is required\n${USAGE}\n`)
  process.exit(2)
}

let relayAddr
try {
  relayAddr = multiaddr(flags.relay)
} catch (err) {
  process.stderr.write(`invalid --relay multiaddr: ${err.message}\n`)
  process.exit(2)
}
const relayPeerId = relayAddr.getComponents().findLast(c => c.name === 'p2p')?.value
if (relayPeerId == null) {
  process.stderr.write('--relay must end with /p2p/<relay peer id>\n')
  process.exit(2)
}
const withWebRTC = !flags['no-webrtc']
const tcpPort = intFlag(flags, 'tcp-port')
const wsPort = intFlag(flags, 'ws-port')
const timeoutMs = intFlag(flags, 'timeout-ms', { min: 1 })
const inboundThreshold = intFlag(flags, 'inbound-connection-threshold', { min: 1 })
const iceServers = iceServersFlag(flags)

const listen = [`${relayAddr.toString()}/p2p-circuit`]
if (withWebRTC) listen.push('/webrtc')
if (tcpPort != null) listen.push(`/ip4/${flags.host}/tcp/${tcpPort}`)
if (wsPort != null) listen.push(`/ip4/${flags.host}/tcp/${wsPort}/ws`)

const transports = [tcp(), webSockets(), circuitRelayTransport()]
if (withWebRTC) {
  transports.push(webRTC({ rtcConfiguration: rtcConfiguration(flags['webrtc-bind-address'], iceServers) }))
}

let node
const shutdown = exitOnShutdown(() => node, { ignoreStdin: flags['ignore-stdin'] })

// js-libp2p 3.x marks relayed connections as "limited": inbound streams on
// them are refused unless the handler was registered with
// runOnLimitedConnection: true. ping and identify default to true in these
// versions (set explicitly here), the circuit relay stop handler and
// /webrtc-signaling/0.0.1 register with true internally.
try {
  node = await createLibp2p({
    privateKey: await loadOrCreateKey(flags.key),
    addresses: { listen },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      // The library default is 5 inbound connections per second per host. A
      // relayed connection's remote address starts with the relay's
      // /ip4/127.0.0.1/..., so every relayed dial counts against the relay's
      // IP: the 6th relayed dial within a second is reset. Raised for tests;
      // pass 5 to get the library behaviour.
      inboundConnectionThreshold: inboundThreshold
    },
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true })
    },
    start: false
  })
} catch (err) {
  log('fatal', { error: errorString(err) })
  process.exit(1)
}

logConnections(node)
if (flags.open != null) {
  // an app that talks to whoever connects, over whatever connection came (a relayed one too): the
  // peer's handler decides whether it runs on a limited connection
  node.addEventListener('connection:open', (evt) => {
    const conn = evt.detail
    if (conn.direction !== 'inbound') return
    conn.newStream(flags.open, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) })
      .then(async (stream) => {
        stream.send(new TextEncoder().encode('hello\n'))
        await stream.close().catch(() => {})
        log('stream_opened', { protocol: flags.open, remote_peer: conn.remotePeer.toString(), limited: conn.limits != null })
      })
      .catch((err) => log('stream_failed', { protocol: flags.open, error: errorString(err) }))
  })
}
node.addEventListener('self:peer:update', () => {
  log('self_peer_update', { addrs: node.getMultiaddrs().map(String) })
})

const peerId = node.peerId.toString()

function isReady (addrs) {
  const circuit = addrs.some(a => a.includes('/p2p-circuit/p2p/'))
  const webrtc = addrs.some(a => a.includes('/p2p-circuit/webrtc/p2p/'))
  return circuit && (!withWebRTC || webrtc)
}

let readyCleanup = () => {}
const ready = new Promise((resolve) => {
  const check = () => {
    const addrs = node.getMultiaddrs().map(String)
    if (isReady(addrs)) {
      node.removeEventListener('self:peer:update', check)
      resolve(addrs)
    }
  }
  node.addEventListener('self:peer:update', check)
  // also poll: the address list can change without the event in some paths
  const timer = setInterval(check, 100)
  timer.unref()
  readyCleanup = () => clearInterval(timer)
})

try {
  await node.start()
} catch (err) {
  log('fatal', { error: `start failed: ${errorString(err)}` })
  await node.stop().catch(() => {})
  process.exit(1)
}

const timeout = new Promise((resolve) => setTimeout(() => resolve(null), timeoutMs).unref())
const addrs = await Promise.race([ready, timeout])
readyCleanup()
if (addrs == null) {
  log('fatal', { error: `no relay reservation within ${timeoutMs} ms`, addrs: node.getMultiaddrs().map(String) })
  await node.stop().catch(() => {})
  process.exit(1)
}

emit({
  event: 'ready',
  peer_id: peerId,
  relay_peer_id: relayPeerId,
  webrtc: withWebRTC,
  addrs
})

void shutdown
