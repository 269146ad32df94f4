// js-libp2p 2.x peer behind a relay (reference peer for p2pdiag): reserves a
// slot on --relay and listens on /p2p-circuit and (unless --no-webrtc)
// WebRTC private-to-private (@libp2p/webrtc 5.2.20).
//
// stdout, one line once its relayed addresses are known:
//   {"event":"ready","peer_id":"12D3...","relay_peer_id":"12D3...","webrtc":true,
//    "addrs":["<relay>/p2p-circuit/p2p/ID","<relay>/p2p-circuit/webrtc/p2p/ID",...]}
// stderr: JSON log lines (connection_open/close, self_peer_update, fatal).
// Exits 1 with a "fatal" line if there is no reservation within --timeout-ms;
// otherwise runs until SIGTERM, SIGINT or stdin EOF (unless --ignore-stdin).

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
import { emit, errorString, exitOnShutdown, intFlag, loadOrCreateKey, log, logConnections, parseFlags, rtcConfiguration } from './common.mjs'

const USAGE = `usage: node listener.mjs --relay MULTIADDR(/p2p/RELAY_ID) [--no-webrtc]
  [--webrtc-bind-address 127.0.0.1] [--inbound-connection-threshold 100] [--key FILE]
  [--timeout-ms 20000] [--ignore-stdin]`

const flags = parseFlags({
  relay: { type: 'string' },
  'no-webrtc': { type: 'boolean', default: false },
  'webrtc-bind-address': { type: 'string', default: '127.0.0.1' },
  'inbound-connection-threshold': { type: 'string', default: '100' },
  key: { type: 'string' },
  'timeout-ms': { type: 'string', default: '20000' },
  'ignore-stdin': { type: 'boolean', default: false }
}, USAGE)

let relayPeerId
try {
  relayPeerId = multiaddr(flags.relay ?? '').getPeerId()
} catch (err) {
  process.stderr.write(`invalid --relay multiaddr: ${err.message}\n`)
  process.exit(2)
}
if (relayPeerId == null) {
  process.stderr.write(`--relay MULTIADDR ending in /p2p/<relay peer id> is required\n${USAGE}\n`)
  process.exit(2)
}
const withWebRTC = !flags['no-webrtc']
const timeoutMs = intFlag(flags, 'timeout-ms', 1)

const transports = [tcp(), webSockets(), circuitRelayTransport()]
if (withWebRTC) transports.push(webRTC({ rtcConfiguration: rtcConfiguration(flags['webrtc-bind-address']) }))

let node
exitOnShutdown(() => node, flags['ignore-stdin'])
try {
  node = await createLibp2p({
    privateKey: await loadOrCreateKey(flags.key),
    addresses: { listen: [`${flags.relay}/p2p-circuit`, ...(withWebRTC ? ['/webrtc'] : [])] },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // relayed dials count against the relay's IP (127.0.0.1): the library's 5 per second is too few
    connectionManager: { inboundConnectionThreshold: intFlag(flags, 'inbound-connection-threshold', 1) },
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
node.addEventListener('self:peer:update', () => log('self_peer_update', { addrs: node.getMultiaddrs().map(String) }))

const isReady = (addrs) => addrs.some(a => a.includes('/p2p-circuit/p2p/')) &&
  (!withWebRTC || addrs.some(a => a.includes('/p2p-circuit/webrtc/p2p/')))

try {
  await node.start()
} catch (err) {
  log('fatal', { error: `start failed: ${errorString(err)}` })
  process.exit(1)
}
const deadline = Date.now() + timeoutMs
let addrs = node.getMultiaddrs().map(String)
// polled: the address list can change without a self:peer:update event
while (!isReady(addrs) && Date.now() < deadline) {
  await new Promise(resolve => setTimeout(resolve, 100))
  addrs = node.getMultiaddrs().map(String)
}
if (!isReady(addrs)) {
  log('fatal', { error: `no relay reservation within ${timeoutMs} ms`, addrs })
  await node.stop().catch(() => {})
  process.exit(1)
}
emit({ event: 'ready', peer_id: node.peerId.toString(), relay_peer_id: relayPeerId, webrtc: withWebRTC, addrs })
