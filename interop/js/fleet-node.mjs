// A js-libp2p server node of a chat fleet (reference peer for `p2pdiag watch`): TCP and WebSocket
// listeners on --host, identify, ping and GossipSub subscribed to every --topic; with --relay, also a
// reservation on that relay (a /p2p-circuit address); with --dial, a connection to each other fleet
// node given, so the fleet is one mesh.
//
// stdout: one {"event":"ready","peer_id":"12D3...","addrs":[...],"topics":[...]} line, then one JSON
//   line per control command.
// stdin: control, one JSON command a line, each answered with one JSON line on stdout
//   ({"ok":true,"cmd":...,...} or {"ok":false,"cmd":...,"error":"..."}): the faults a fleet showed.
//   {"cmd":"close-listeners"}          every listener stops accepting; the process and its
//                                      connections live on (fault a: a node that stopped listening)
//   {"cmd":"remove-address","addr":A} A (with or without /p2p/<id>) is no longer announced by
//                                      identify (fault b: an address that vanished)
//   {"cmd":"stop-forwarding","topic":T} still connected and subscribed to T, but every message of T
//                                      is ignored by a topic validator: neither delivered nor
//                                      forwarded nor gossiped (fault d)
//   {"cmd":"status"}                   mesh and topic peers per topic, listen and announced
//                                      addresses, connected peers
// stderr: JSON log lines (connection_open/close, message, control, shutdown ...).
// Exits on SIGTERM, SIGINT or stdin EOF (unless --ignore-stdin).

import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { emit, errorString, exitOnShutdown, intFlag, loadOrCreateKey, log, logConnections, parseFlags } from './common.mjs'

const USAGE = `usage: node fleet-node.mjs --topic TOPIC [--topic ...] [--host 127.0.0.1] [--tcp-port 0] [--ws-port 0]
  [--relay MULTIADDR(/p2p/RELAY_ID)] [--dial MULTIADDR ...] [--key FILE] [--heartbeat-ms 1000]
  [--timeout-ms 20000] [--log-messages] [--ignore-stdin]`

const flags = parseFlags({
  topic: { type: 'string', multiple: true, default: [] },
  host: { type: 'string', default: '127.0.0.1' },
  'tcp-port': { type: 'string', default: '0' },
  'ws-port': { type: 'string', default: '0' },
  relay: { type: 'string' },
  dial: { type: 'string', multiple: true, default: [] },
  key: { type: 'string' },
  'heartbeat-ms': { type: 'string', default: '1000' },
  'timeout-ms': { type: 'string', default: '20000' },
  'log-messages': { type: 'boolean', default: false },
  'ignore-stdin': { type: 'boolean', default: false }
}, USAGE)

if (flags.topic.length === 0) {
  process.stderr.write(`--topic is required\n${USAGE}\n`)
  process.exit(2)
}
const tcpPort = intFlag(flags, 'tcp-port')
const wsPort = intFlag(flags, 'ws-port')
const heartbeatMs = intFlag(flags, 'heartbeat-ms', { min: 50 })
const timeoutMs = intFlag(flags, 'timeout-ms', { min: 1 })
let dials
try {
  dials = flags.dial.map(a => multiaddr(a))
  if (flags.relay != null) multiaddr(flags.relay)
} catch (err) {
  process.stderr.write(`invalid multiaddr: ${err.message}\n`)
  process.exit(2)
}

const listen = [`/ip4/${flags.host}/tcp/${tcpPort}`, `/ip4/${flags.host}/tcp/${wsPort}/ws`]
const transports = [tcp(), webSockets()]
if (flags.relay != null) {
  listen.push(`${flags.relay}/p2p-circuit`)
  transports.push(circuitRelayTransport())
}

let node

// fault b: addresses no longer announced (compared without /p2p/<our id>)
const removed = new Set()
const bare = (ma) => {
  const s = ma.toString()
  const suffix = `/p2p/${node.peerId}`
  return s.endsWith(suffix) ? s.slice(0, -suffix.length) : s
}
// fault a: the addresses of closed listeners, still announced as the node did before (it does not
// know it stopped listening); the library would drop them with the listener
const stillAnnounced = []
// fault d: topics whose messages are ignored
const stopped = new Set()

const shutdown = exitOnShutdown(() => node, { ignoreStdin: flags['ignore-stdin'] })

try {
  node = await createLibp2p({
    privateKey: await loadOrCreateKey(flags.key),
    addresses: {
      listen,
      announceFilter: (addrs) => {
        const have = new Set(addrs.map(bare))
        const kept = stillAnnounced.filter(a => !have.has(bare(a)))
        return [...addrs, ...kept].filter(a => !removed.has(bare(a)))
      }
    },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 100 },
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true }),
      // the library's defaults (signed messages, msg id from+seqno, no peer exchange), a fast heartbeat
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, heartbeatInterval: heartbeatMs })
    },
    start: false
  })
} catch (err) {
  log('fatal', { error: errorString(err) })
  process.exit(1)
}
logConnections(node)
const pubsub = node.services.pubsub

if (flags['log-messages']) {
  pubsub.addEventListener('message', (evt) => {
    const m = evt.detail
    log('message', { topic: m.topic, from: m.from?.toString(), bytes: m.data.byteLength })
  })
}

async function fatal (error) {
  log('fatal', { error })
  await node.stop().catch(() => {})
  process.exit(1)
}

try {
  await node.start()
} catch (err) {
  await fatal(`start failed: ${errorString(err)}`)
}
for (const topic of flags.topic) {
  pubsub.subscribe(topic)
}

async function waitFor (predicate, what) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) await fatal(`no ${what} within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

if (flags.relay != null) {
  await waitFor(() => node.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit/p2p/')), 'relay reservation')
}
for (const ma of dials) {
  try {
    await node.dial(ma, { signal: AbortSignal.timeout(timeoutMs) })
  } catch (err) {
    await fatal(`dial ${ma} failed: ${errorString(err)}`)
  }
}

function status () {
  const topics = {}
  for (const topic of flags.topic) {
    topics[topic] = {
      mesh_peers: pubsub.getMeshPeers(topic).map(String),
      topic_peers: pubsub.getSubscribers(topic).map(String),
      forwarding: !stopped.has(topic)
    }
  }
  return {
    topics,
    listen_addrs: node.components.transportManager.getAddrs().map(String),
    announced: node.getMultiaddrs().map(String),
    connections: node.getConnections().map(c => ({ remote_peer: c.remotePeer.toString(), remote_addr: c.remoteAddr.toString() }))
  }
}

async function control (cmd) {
  switch (cmd.cmd) {
    case 'close-listeners': {
      // stop accepting, keep every connection (a listener's close() would end them too)
      const closed = []
      const before = node.getMultiaddrs()
      for (const listener of node.components.transportManager.getListeners()) {
        const addrs = listener.getAddrs().map(a => bare(a))
        if (typeof listener.pause === 'function') listener.pause(true) // tcp: server.close(), sockets kept
        else if (listener.server?.listening) listener.server.close() // websockets: the net.Server under it
        else continue
        closed.push(...addrs)
      }
      stillAnnounced.push(...before.filter(a => closed.includes(bare(a))))
      return { closed, announced: node.getMultiaddrs().map(String) }
    }
    case 'remove-address': {
      if (typeof cmd.addr !== 'string') throw new Error('remove-address needs "addr"')
      removed.add(bare(multiaddr(cmd.addr)))
      return { announced: node.getMultiaddrs().map(String) }
    }
    case 'stop-forwarding': {
      if (typeof cmd.topic !== 'string') throw new Error('stop-forwarding needs "topic"')
      stopped.add(cmd.topic)
      // Ignore: not delivered, not forwarded, not in the message cache (so never gossiped), and no
      // penalty for the peer that sent it
      pubsub.topicValidators.set(cmd.topic, () => 'ignore')
      return { topic: cmd.topic }
    }
    case 'status':
      return status()
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd.cmd)}`)
  }
}

if (!flags['ignore-stdin']) {
  // one command at a time, answered in order
  let queue = Promise.resolve()
  createInterface({ input: process.stdin }).on('line', (line) => {
    queue = queue.then(async () => {
      let cmd
      try {
        cmd = JSON.parse(line)
        if (cmd == null || typeof cmd !== 'object') throw new Error('not an object')
      } catch (err) {
        emit({ ok: false, cmd: null, error: `not a JSON command: ${err.message}` })
        return
      }
      try {
        const result = await control(cmd)
        log('control', { cmd: cmd.cmd })
        emit({ ok: true, cmd: cmd.cmd, ...result })
      } catch (err) {
        emit({ ok: false, cmd: cmd.cmd ?? null, error: errorString(err) })
      }
    })
  })
}

emit({
  event: 'ready',
  peer_id: node.peerId.toString(),
  addrs: node.getMultiaddrs().map(String),
  topics: flags.topic
})

void shutdown
