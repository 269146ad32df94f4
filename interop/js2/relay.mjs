// js-libp2p 2.x Circuit Relay v2 relay server (reference peer for p2pdiag).
//
// stdout, one line once listening:
//   {"event":"ready","peer_id":"12D3...","addrs":["/ip4/127.0.0.1/tcp/N/p2p/12D3...",".../tcp/M/ws/p2p/12D3..."],
//    "limits":{"duration_ms":120000,"data_bytes":131072}|null}
// stderr: JSON log lines (connection_open, connection_close, shutdown). Unlike
// ../js/relay.mjs it does not log reservations and circuits (that wraps 3.x
// internals); the relay's own debug log (DEBUG=libp2p:*) has them.
// Exits on SIGTERM, SIGINT or stdin EOF (unless --ignore-stdin).

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import { emit, errorString, exitOnShutdown, intFlag, loadOrCreateKey, log, logConnections, parseFlags } from './common.mjs'

const USAGE = `usage: node relay.mjs [--host 127.0.0.1] [--tcp-port 0] [--ws-port 0] [--no-ws]
  [--duration-ms N] [--data-bytes N] [--no-limit] [--max-reservations N]
  [--inbound-connection-threshold 100] [--key FILE] [--ignore-stdin]`

const flags = parseFlags({
  host: { type: 'string', default: '127.0.0.1' },
  'tcp-port': { type: 'string', default: '0' },
  'ws-port': { type: 'string', default: '0' },
  'no-ws': { type: 'boolean', default: false },
  'duration-ms': { type: 'string' },
  'data-bytes': { type: 'string' },
  'no-limit': { type: 'boolean', default: false },
  'max-reservations': { type: 'string' },
  'inbound-connection-threshold': { type: 'string', default: '100' },
  key: { type: 'string' },
  'ignore-stdin': { type: 'boolean', default: false }
}, USAGE)

const listen = [`/ip4/${flags.host}/tcp/${intFlag(flags, 'tcp-port')}`]
if (!flags['no-ws']) listen.push(`/ip4/${flags.host}/tcp/${intFlag(flags, 'ws-port')}/ws`)

const reservations = {}
const durationMs = intFlag(flags, 'duration-ms')
const dataBytes = intFlag(flags, 'data-bytes')
const maxReservations = intFlag(flags, 'max-reservations')
if (durationMs != null) reservations.defaultDurationLimit = durationMs
if (dataBytes != null) reservations.defaultDataLimit = BigInt(dataBytes)
if (maxReservations != null) reservations.maxReservations = maxReservations
if (flags['no-limit']) reservations.applyDefaultLimit = false

let node
exitOnShutdown(() => node, flags['ignore-stdin'])
try {
  node = await createLibp2p({
    privateKey: await loadOrCreateKey(flags.key),
    addresses: { listen },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // the library's 5 inbound connections per second per host is too few for tests on 127.0.0.1
    connectionManager: { inboundConnectionThreshold: intFlag(flags, 'inbound-connection-threshold', 1) },
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true }),
      relay: circuitRelayServer({ reservations })
    }
  })
} catch (err) {
  log('fatal', { error: errorString(err) })
  process.exit(1)
}
logConnections(node)

const peerId = node.peerId.toString()
const store = node.services.relay.reservationStore
emit({
  event: 'ready',
  peer_id: peerId,
  addrs: node.getMultiaddrs().map(String).map(a => a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`),
  limits: flags['no-limit']
    ? null
    : { duration_ms: store?.defaultDurationLimit ?? durationMs, data_bytes: store?.defaultDataLimit ?? dataBytes }
})
