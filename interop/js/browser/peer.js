// Page code of the browser peer (bundled by ../browser-peer.mjs with esbuild,
// run in headless Chromium). A js-libp2p node that reserves a slot on the
// relay given in window.P2PDIAG_CONFIG.relay (over WebSocket) and, unless
// config.webrtc is false, also listens on /webrtc (private-to-private,
// signalled over the relayed connection).
//
// Towards the runner:
//   - window.p2pdiagReport(obj) (a Playwright binding) gets exactly one
//     {"event":"ready",...} or {"event":"fatal",...} object;
//   - console.log gets JSON log lines {"ts":...,"event":...} (connection_open,
//     connection_close, self_peer_update, ...), which the runner relays to its
//     stderr.
// window.p2pdiag.stop() stops the node (called by the runner on shutdown);
// window.p2pdiag.dial(target, timeoutMs) dials a multiaddr from the page and
// pings the peer (the runner's --dial), resolving to a result object.

// first: wraps RTCPeerConnection before @libp2p/webrtc captures it
import './rtc-log.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
// only the browser-safe helpers of common.mjs; its node:* imports are stubbed
// out by the bundler
import { describeConnection, errorString, rtcConfiguration, toJson } from '../common.mjs'
import { log } from './log.js'

const config = window.P2PDIAG_CONFIG
const status = document.getElementById('status')

function report (obj) {
  status.textContent = toJson(obj)
  return window.p2pdiagReport(JSON.parse(toJson(obj)))
}

async function main () {
  const t0 = performance.now()
  const topics = config.topics ?? []
  const privateKey = config.key != null
    ? privateKeyFromProtobuf(Uint8Array.from(config.key))
    : await generateKeyPair('Ed25519')

  const listen = [`${config.relay}/p2p-circuit`]
  const transports = [webSockets(), circuitRelayTransport()]
  if (config.webrtc) {
    listen.push('/webrtc')
    // only the runner's ICE servers (default none; the library default is a
    // list of public STUN servers); a fresh object per peer connection, the
    // library mutates it. No bind address: Chromium gathers on every
    // interface of the namespace it runs in.
    // --ice-transport-policy relay: only TURN candidates (to see a TURN server's refusal fail ICE)
    const base = rtcConfiguration(null, config.iceServers ?? [])
    const policy = config.iceTransportPolicy
    transports.push(webRTC({ rtcConfiguration: policy == null ? base : () => ({ ...base(), iceTransportPolicy: policy }) }))
  }

  const node = await createLibp2p({
    privateKey,
    addresses: { listen },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // the browser build's default gater refuses insecure /ws and private
    // (here: 127.0.0.1) addresses, i.e. exactly the relay we are given
    connectionGater: { denyDialMultiaddr: async () => false },
    connectionManager: {
      // relayed connections count against the relay's IP (library default 5/s)
      inboundConnectionThreshold: config.inboundConnectionThreshold
    },
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true }),
      // a chat peer of a fleet: the library's defaults, as fleet-node.mjs
      ...(topics.length > 0 ? { pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false }) } : {})
    },
    start: false
  })
  window.p2pdiag.node = node

  node.addEventListener('connection:open', (evt) => {
    log('connection_open', describeConnection(evt.detail))
  })
  node.addEventListener('connection:close', (evt) => {
    const opened = evt.detail.timeline?.open
    log('connection_close', { ...describeConnection(evt.detail), open_ms: opened != null ? Date.now() - opened : undefined })
  })
  node.addEventListener('self:peer:update', () => {
    log('self_peer_update', { addrs: node.getMultiaddrs().map(String) })
  })

  // start() returns once the relay is dialled and the reservation made
  // (listening on an explicit <relay>/p2p-circuit address waits for it)
  await node.start()
  const started = performance.now()

  // GossipSub: subscribe, connect to the fleet's nodes (WebSocket) and wait until each of them is seen
  // subscribed to every topic; every message received is a log line
  const mesh = (config.mesh ?? []).map(a => multiaddr(a))
  if (topics.length > 0) {
    const pubsub = node.services.pubsub
    for (const topic of topics) pubsub.subscribe(topic)
    pubsub.addEventListener('message', (evt) => {
      const m = evt.detail
      log('gossip_message', { topic: m.topic, from: m.from?.toString(), bytes: m.data.byteLength,
        head: new TextDecoder().decode(m.data.subarray(0, 32)) })
    })
    const signal = AbortSignal.timeout(config.timeoutMs)
    const peers = await Promise.all(mesh.map(ma => node.dial(ma, { signal }).then(c => c.remotePeer.toString())))
    await new Promise((resolve, reject) => {
      const poll = setInterval(() => {
        if (signal.aborted) {
          clearInterval(poll)
          reject(new Error(`the mesh nodes were not seen subscribed within ${config.timeoutMs} ms`))
          return
        }
        if (topics.every(t => peers.every(p => pubsub.getSubscribers(t).some(s => s.toString() === p)))) {
          clearInterval(poll)
          resolve()
        }
      }, 50)
    })
  }

  // ready once the circuit address (and, with WebRTC, the circuit /webrtc
  // address) of the reservation shows up among our addresses
  const addrs = await new Promise((resolve, reject) => {
    const deadline = setTimeout(() => {
      clearInterval(poll)
      reject(new Error(`no relay reservation within ${config.timeoutMs} ms; addrs: ${node.getMultiaddrs().map(String).join(' ')}`))
    }, config.timeoutMs)
    const poll = setInterval(() => {
      const now = node.getMultiaddrs().map(String)
      if (now.some(a => a.includes('/p2p-circuit/p2p/')) &&
          (!config.webrtc || now.some(a => a.includes('/p2p-circuit/webrtc/p2p/')))) {
        clearTimeout(deadline)
        clearInterval(poll)
        resolve(now)
      }
    }, 50)
  })

  await report({
    event: 'ready',
    peer_id: node.peerId.toString(),
    relay_peer_id: config.relayPeerId,
    webrtc: config.webrtc,
    addrs,
    topics,
    node_start_ms: Math.round(started - t0),
    addrs_ms: Math.round(performance.now() - started)
  })
}

window.p2pdiag = {
  node: undefined,
  async stop () {
    await window.p2pdiag.node?.stop()
  },
  // never rejects: a failed dial is a result, as dialer.mjs prints it
  async dial (target, timeoutMs) {
    const node = window.p2pdiag.node
    const signal = AbortSignal.timeout(timeoutMs)
    let stage = 'dial'
    try {
      const conn = await node.dial(multiaddr(target), { signal })
      stage = 'ping'
      const rtt = await node.services.ping.ping(conn.remotePeer, { signal })
      return JSON.parse(toJson({ ok: true, target, rtt_ms: rtt, ...describeConnection(conn) }))
    } catch (err) {
      return { ok: false, target, stage, error: errorString(err) }
    }
  }
}
window.addEventListener('unhandledrejection', (evt) => {
  log('unhandled_rejection', { error: errorString(evt.reason) })
})

main().catch(async (err) => {
  await window.p2pdiag.stop().catch(() => {})
  await report({ event: 'fatal', error: errorString(err) })
})
