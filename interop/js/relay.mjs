// js-libp2p Circuit Relay v2 relay server (reference peer for p2pdiag tests).
//
// stdout: exactly one line once listening:
//   {"event":"ready","peer_id":"12D3...","addrs":["/ip4/127.0.0.1/tcp/N/p2p/12D3...","/ip4/127.0.0.1/tcp/M/ws/p2p/12D3..."],
//    "limits":{"duration_ms":...,"data_bytes":...},"max_reservations":...}
// stderr: JSON log lines (reservation, hop_connect, circuit_open, circuit_close,
//   connection_open, connection_close, ...).
// Exits on SIGTERM, SIGINT or stdin EOF (unless --ignore-stdin).
//
// NOTE: js-libp2p writes Limit.duration in MILLISECONDS on the wire (the spec
// says seconds). This is library behaviour and is deliberately kept.

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import * as Digest from 'multiformats/hashes/digest'
import { emit, errorString, exitOnShutdown, intFlag, loadOrCreateKey, log, logConnections, parseFlags } from './common.mjs'

const USAGE = `usage: node relay.mjs [--host 127.0.0.1] [--tcp-port 0] [--ws-port 0] [--no-ws]
  [--duration-ms N] [--data-bytes N] [--no-limit] [--max-reservations N] [--reservation-ttl-ms N]
  [--inbound-connection-threshold N] [--key FILE] [--ignore-stdin]`

const flags = parseFlags({
  host: { type: 'string', default: '127.0.0.1' },
  'tcp-port': { type: 'string', default: '0' },
  'ws-port': { type: 'string', default: '0' },
  'no-ws': { type: 'boolean', default: false },
  'duration-ms': { type: 'string' },
  'data-bytes': { type: 'string' },
  'no-limit': { type: 'boolean', default: false },
  'max-reservations': { type: 'string' },
  'reservation-ttl-ms': { type: 'string' },
  'inbound-connection-threshold': { type: 'string', default: '100' },
  key: { type: 'string' },
  'ignore-stdin': { type: 'boolean', default: false }
}, USAGE)

const host = flags.host
const tcpPort = intFlag(flags, 'tcp-port')
const wsPort = intFlag(flags, 'ws-port')
const durationMs = intFlag(flags, 'duration-ms')
const dataBytes = intFlag(flags, 'data-bytes')
const maxReservations = intFlag(flags, 'max-reservations')
const reservationTtl = intFlag(flags, 'reservation-ttl-ms', { min: 1 })
const inboundThreshold = intFlag(flags, 'inbound-connection-threshold', { min: 1 })

const listen = [`/ip4/${host}/tcp/${tcpPort}`]
if (!flags['no-ws']) {
  // plain (insecure) ws on loopback; @libp2p/websockets 10.x listens on and
  // dials /ws without any filter in Node (only the browser connection gater
  // refuses insecure ws / private addresses).
  listen.push(`/ip4/${host}/tcp/${wsPort}/ws`)
}

const reservations = {}
if (maxReservations != null) reservations.maxReservations = maxReservations
if (reservationTtl != null) reservations.reservationTtl = reservationTtl
if (durationMs != null) reservations.defaultDurationLimit = durationMs
if (dataBytes != null) reservations.defaultDataLimit = BigInt(dataBytes)
if (flags['no-limit']) reservations.applyDefaultLimit = false

let node
const shutdown = exitOnShutdown(() => node, { ignoreStdin: flags['ignore-stdin'] })

try {
  node = await createLibp2p({
    privateKey: await loadOrCreateKey(flags.key),
    addresses: { listen },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      // library default is 5 inbound connections per second per host, which
      // tests that all come from 127.0.0.1 exceed easily
      inboundConnectionThreshold: inboundThreshold
    },
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
instrumentRelay(node.services.relay)

const peerId = node.peerId.toString()
const addrs = node.getMultiaddrs().map(ma => ma.toString())
  .map(a => a.includes('/p2p/') ? a : `${a}/p2p/${peerId}`)
const store = node.services.relay.reservationStore

emit({
  event: 'ready',
  peer_id: peerId,
  addrs,
  limits: store?.applyDefaultLimit === false
    ? null
    : { duration_ms: store?.defaultDurationLimit, data_bytes: store?.defaultDataLimit },
  max_reservations: store?.maxReservations,
  reservation_ttl_ms: store?.reservationTtl
})

/**
 * Log reservations and circuits. CircuitRelayServer (4.2.x) dispatches no
 * events for these, so wrap its (plain JS, non-#private) methods.
 */
function instrumentRelay (relay) {
  const store = relay.reservationStore
  if (store?.reserve != null) {
    const reserve = store.reserve.bind(store)
    store.reserve = (peer, addr, limit) => {
      const refresh = store.reservations.has(peer)
      const result = reserve(peer, addr, limit)
      const r = store.reservations.get(peer)
      log('reservation', {
        peer: peer.toString(),
        addr: addr?.toString(),
        status: result.status,
        ok: result.status === 'OK',
        refresh,
        expire: result.expire,
        limit: r?.limit ?? null,
        count: store.reservations.size
      })
      return result
    }
  }

  const handleConnect = relay.handleConnect.bind(relay)
  relay.handleConnect = async (opts, options) => {
    const dst = peerIdFromBytes(opts.request?.peer?.id)
    log('hop_connect', { src: opts.connection.remotePeer.toString(), src_addr: opts.connection.remoteAddr.toString(), dst })
    return handleConnect(opts, options)
  }

  const stopHop = relay.stopHop.bind(relay)
  relay.stopHop = async (opts, options) => {
    const dst = opts.connection.remotePeer.toString()
    const src = peerIdFromBytes(opts.request?.peer?.id)
    let stream
    try {
      stream = await stopHop(opts, options)
    } catch (err) {
      log('circuit_failed', { src, dst, error: errorString(err) })
      throw err
    }
    if (stream == null) {
      log('circuit_failed', { src, dst, error: 'stop request refused or unanswered' })
      return stream
    }
    const opened = Date.now()
    log('circuit_open', { src, dst, limit: opts.request.limit ?? null })
    stream.addEventListener('close', (evt) => {
      log('circuit_close', {
        src,
        dst,
        duration_ms: Date.now() - opened,
        error: errorString(evt.error) ?? null
      })
    }, { once: true })
    return stream
  }
}

function peerIdFromBytes (bytes) {
  try {
    return peerIdFromMultihash(Digest.decode(bytes)).toString()
  } catch {
    return undefined
  }
}

void shutdown
