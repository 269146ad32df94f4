"""Every finding code: one name per docs/verdicts/<code>.md page.

A `StrEnum`, so a code is its string wherever it goes (JSON, the docs path, a lab scenario's
expectations), while inside p2pdiag it is compared as a name, never as a bare string. A code is
stable: users' scripts and the pages depend on it.
"""

from __future__ import annotations

import enum


class Code(enum.StrEnum):
    ADDRESS_DOWN = "address-down"
    ADDRESS_VANISHED = "address-vanished"
    AGENT_CHANGED = "agent-changed"
    CANARY_LOSS = "canary-loss"
    CIRCUIT_ADDRESS_MISSING = "circuit-address-missing"
    CIRCUIT_HANDSHAKE_FAILED = "circuit-handshake-failed"
    DIRECT_IMPOSSIBLE_SYMMETRIC_NAT = "direct-impossible-symmetric-nat"
    HANDSHAKE_FAILING = "handshake-failing"
    HOP_CONNECTION_FAILED = "hop-connection-failed"
    HOP_NO_RESERVATION = "hop-no-reservation"
    HOP_PERMISSION_DENIED = "hop-permission-denied"
    HOP_REQUEST_REJECTED = "hop-request-rejected"
    HOP_RESOURCE_LIMIT = "hop-resource-limit"
    HOP_UNANSWERED = "hop-unanswered"
    HOP_UNKNOWN_STATUS = "hop-unknown-status"
    IDENTIFY_FAILED = "identify-failed"
    LIMITED_STREAM_REFUSED = "limited-stream-refused"
    NAT_MAPPING_SYMMETRIC = "nat-mapping-symmetric"
    NAT_MAPPING_UNKNOWN = "nat-mapping-unknown"
    NAT_PROBED = "nat-probed"
    PEER_DOWN = "peer-down"
    PEER_NOT_LISTENING = "peer-not-listening"
    PEER_NO_WEBRTC_SIGNALING = "peer-no-webrtc-signaling"
    PROBE_FAILED = "probe-failed"
    RECONNECT_LOOP = "reconnect-loop"
    RELAYED_PING_FAILED = "relayed-ping-failed"
    RELAY_CHECK_CRASHED = "relay-check-crashed"
    RELAY_CHECK_INCOMPLETE = "relay-check-incomplete"
    RELAY_CUT_DATA = "relay-cut-data"
    RELAY_CUT_DURATION = "relay-cut-duration"
    RELAY_CUT_UNEXPLAINED = "relay-cut-unexplained"
    RELAY_ENTRY_REJECTED = "relay-entry-rejected"
    RELAY_HOP_WITHDRAWN = "relay-hop-withdrawn"
    RELAY_KEEPS_RESERVATION = "relay-keeps-reservation"
    RELAY_LIMITED = "relay-limited"
    RELAY_LIMITS_CHANGED = "relay-limits-changed"
    RELAY_LIMIT_EARLY = "relay-limit-early"
    RELAY_LIMIT_INCONSISTENT = "relay-limit-inconsistent"
    RELAY_LIMIT_NOT_ENFORCED = "relay-limit-not-enforced"
    RELAY_LIMIT_TOO_SMALL = "relay-limit-too-small"
    RELAY_LIMIT_UNIT = "relay-limit-unit"
    RELAY_LOOP_FAILED = "relay-loop-failed"
    RELAY_NO_HOP = "relay-no-hop"
    RELAY_SLOTS_FULL = "relay-slots-full"
    RELAY_SLOTS_NOT_FREED = "relay-slots-not-freed"
    RELAY_TRANSFER_FAILED = "relay-transfer-failed"
    RELAY_UNREACHABLE = "relay-unreachable"
    RELAY_WRONG_PEER_ID = "relay-wrong-peer-id"
    REMOTE_CLOSED_AFTER_UPGRADE = "remote-closed-after-upgrade"
    REMOTE_CLOSED_RELAYED = "remote-closed-relayed"
    RESERVATION_ADDRS = "reservation-addrs"
    RESERVATION_EXPIRED = "reservation-expired"
    RESERVATION_LOST = "reservation-lost"
    RESERVATION_REFRESH_FAILED = "reservation-refresh-failed"
    RESERVATION_REFUSED = "reservation-refused"
    RESERVATION_TTL = "reservation-ttl"
    RESERVE_UNANSWERED = "reserve-unanswered"
    RUN_INTERRUPTED = "run-interrupted"
    STEP_TIMEOUT = "step-timeout"
    SUBSCRIPTION_LOST = "subscription-lost"
    TURN_ALLOCATION_FAILED = "turn-allocation-failed"
    TURN_CHECKS_FAILED = "turn-checks-failed"
    UDP_BLOCKED_LOCAL = "udp-blocked-local"
    UDP_BLOCKED_REMOTE = "udp-blocked-remote"
    UPGRADE_CHANGED = "upgrade-changed"
    UPGRADE_NOT_ATTEMPTED = "upgrade-not-attempted"
    VOUCHER_BAD_SIGNATURE = "voucher-bad-signature"
    VOUCHER_EXPIRATION = "voucher-expiration"
    VOUCHER_MALFORMED = "voucher-malformed"
    VOUCHER_MISSING = "voucher-missing"
    VOUCHER_UNVERIFIABLE = "voucher-unverifiable"
    VOUCHER_WRONG_PEER = "voucher-wrong-peer"
    VOUCHER_WRONG_RELAY = "voucher-wrong-relay"
    WATCH_STARVED = "watch-starved"
    WEBRTC_CHANNEL_NOT_OPENED = "webrtc-channel-not-opened"
    WEBRTC_DTLS_FAILED = "webrtc-dtls-failed"
    WEBRTC_ICE_FAILED = "webrtc-ice-failed"
    WEBRTC_MDNS_UNRESOLVED = "webrtc-mdns-unresolved"
    WEBRTC_NO_LOCAL_CANDIDATES = "webrtc-no-local-candidates"
    WEBRTC_NO_REMOTE_CANDIDATES = "webrtc-no-remote-candidates"
    WEBRTC_SIGNALING_MALFORMED = "webrtc-signaling-malformed"
    WEBRTC_SIGNALING_RESET = "webrtc-signaling-reset"
    WEBRTC_SIGNALING_TIMEOUT = "webrtc-signaling-timeout"
    WEBRTC_SIGNALING_UNSUPPORTED = "webrtc-signaling-unsupported"
    WEBRTC_UPGRADE_ABANDONED = "webrtc-upgrade-abandoned"


# how the relayed fallback ended, when it did not hold
FALLBACK_ENDS = frozenset({Code.RELAY_CUT_DATA, Code.RELAY_CUT_DURATION, Code.RELAY_CUT_UNEXPLAINED,
                           Code.REMOTE_CLOSED_RELAYED, Code.REMOTE_CLOSED_AFTER_UPGRADE, Code.RELAYED_PING_FAILED})
# the WebRTC upgrade's own findings (its network cause is apart: udp-*, nat-*, turn-*, direct-*)
WEBRTC = frozenset({
    Code.WEBRTC_CHANNEL_NOT_OPENED, Code.WEBRTC_DTLS_FAILED, Code.WEBRTC_ICE_FAILED, Code.WEBRTC_MDNS_UNRESOLVED,
    Code.WEBRTC_NO_LOCAL_CANDIDATES, Code.WEBRTC_NO_REMOTE_CANDIDATES, Code.WEBRTC_SIGNALING_MALFORMED,
    Code.WEBRTC_SIGNALING_RESET, Code.WEBRTC_SIGNALING_TIMEOUT, Code.WEBRTC_SIGNALING_UNSUPPORTED,
    Code.WEBRTC_UPGRADE_ABANDONED,
})
