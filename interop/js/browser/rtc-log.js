// Logs what Chromium's WebRTC stack does for every RTCPeerConnection the page
// makes: the ICE candidates it gathers and receives, state changes and, once
// connected, the selected candidate pair. Works by replacing
// globalThis.RTCPeerConnection with a subclass, so it must be evaluated before
// @libp2p/webrtc captures the constructor: import it first.

import { errorString } from '../common.mjs'
import { log } from './log.js'

const Native = globalThis.RTCPeerConnection
let count = 0

function describeCandidate (c) {
  if (c == null) return null
  return {
    type: c.candidateType ?? c.type ?? null,
    protocol: c.protocol ?? null,
    address: c.address ?? null,
    port: c.port ?? null,
    candidate: c.candidate ?? null
  }
}

async function logSelectedPair (pc, id) {
  try {
    const stats = await pc.getStats()
    let transport
    stats.forEach((s) => { if (s.type === 'transport') transport = s })
    const pair = transport?.selectedCandidatePairId != null ? stats.get(transport.selectedCandidatePairId) : undefined
    if (pair == null) {
      log('ice_selected_pair', { pc: id, dtls_state: transport?.dtlsState ?? null, pair: null })
      return
    }
    const local = stats.get(pair.localCandidateId)
    const remote = stats.get(pair.remoteCandidateId)
    log('ice_selected_pair', {
      pc: id,
      dtls_state: transport?.dtlsState ?? null,
      local: describeCandidate(local),
      remote: describeCandidate(remote),
      rtt_ms: pair.currentRoundTripTime != null ? pair.currentRoundTripTime * 1000 : null
    })
  } catch (err) {
    log('ice_selected_pair', { pc: id, error: errorString(err) })
  }
}

if (Native != null) {
  globalThis.RTCPeerConnection = class LoggedRTCPeerConnection extends Native {
    constructor (config, ...rest) {
      super(config, ...rest)
      const id = ++count
      this.p2pdiagId = id
      let gathered = 0
      log('webrtc_peer_connection', { pc: id, ice_servers: config?.iceServers?.length ?? null })
      this.addEventListener('icecandidate', (evt) => {
        if (evt.candidate == null || evt.candidate.candidate === '') {
          log('ice_gathering_done', { pc: id, local_candidates: gathered })
          return
        }
        gathered++
        log('ice_local_candidate', { pc: id, ...describeCandidate(evt.candidate) })
      })
      this.addEventListener('icecandidateerror', (evt) => {
        log('ice_candidate_error', { pc: id, url: evt.url, code: evt.errorCode, text: evt.errorText })
      })
      let dtlsHooked = false
      this.addEventListener('connectionstatechange', () => {
        const dtls = this.sctp?.transport
        log('webrtc_state', {
          pc: id,
          connection_state: this.connectionState,
          ice_state: this.iceConnectionState,
          dtls_state: dtls?.state ?? null
        })
        if (dtls != null && !dtlsHooked) {
          dtlsHooked = true
          dtls.addEventListener('error', (evt) => {
            const e = evt.error ?? {}
            log('dtls_error', {
              pc: id,
              detail: e.errorDetail ?? null,
              received_alert: e.receivedAlert ?? null,
              sent_alert: e.sentAlert ?? null,
              message: e.message ?? null
            })
          })
        }
        if (this.connectionState === 'connected' || this.connectionState === 'failed') void logSelectedPair(this, id)
      })
    }

    async addIceCandidate (candidate, ...rest) {
      if (candidate?.candidate) {
        log('ice_remote_candidate', { pc: this.p2pdiagId, candidate: candidate.candidate })
      }
      return super.addIceCandidate(candidate, ...rest)
    }
  }
}
