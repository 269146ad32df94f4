"""Typed trace events, one frozen class per fact, and their JSON form (docs/trace-format.md).

Importing this package registers every event type, whichever module of it is imported first:
`event_from_dict` knows them all. The modules, by concept:

- `base`: `Event`, `ConnectionEvent` (events about one connection), the registry, shared enums;
- `run`: the dial target, step timeouts, the hold, the run's end;
- `relay`: the connection to a relay, identify, HOP, RESERVE and STOP;
- `circuit`: the relayed connection and pings;
- `webrtc`: the WebRTC upgrade (`WebRTCEvent`, `CandidatePairEvent`);
- `nat`: the NAT probe;
- `relaycheck`: relay-check's own events (import it as a module: `from p2pdiag.trace.events import
  relaycheck as rc`);
- `watch`: watch's own events (targets, probes in brief, reservations held, changes);
- `codec`: events to and from their trace-file form, every field checked.

Every name below is re-exported so `from p2pdiag.trace.events import X` works for all of them.
"""

from __future__ import annotations

from p2pdiag.trace.events import (
    relaycheck,  # noqa: F401  (its event types are registered with the rest)
    watch,  # noqa: F401  (watch's event types, likewise)
)
from p2pdiag.trace.events.base import (
    EVENT_TYPES,
    Closer,
    ConnectionEvent,
    E,
    ErrorKind,
    Event,
    Path,
    Subject,
    register,
)
from p2pdiag.trace.events.circuit import (
    CircuitClosed,
    CircuitSecured,
    CircuitTraffic,
    CircuitUpgradeFailed,
    PingCompleted,
    PingFailed,
    PingServed,
)
from p2pdiag.trace.events.codec import (
    EventDecodeError,
    event_from_dict,
    event_to_dict,
)
from p2pdiag.trace.events.nat import (
    NatTestCompleted,
)
from p2pdiag.trace.events.relay import (
    HopConnectSent,
    HopFailed,
    HopStatusReceived,
    IdentifyCompleted,
    IdentifyFailed,
    RelayConnected,
    RelayDialFailed,
    RelayDialStarted,
    ReservationAccepted,
    ReservationFailed,
    StopConnectReceived,
)
from p2pdiag.trace.events.run import (
    DialMethod,
    HoldStarted,
    InterruptReason,
    RunFinished,
    RunInterrupted,
    StepTimedOut,
    TargetResolved,
    UpgradeNotAttempted,
)
from p2pdiag.trace.events.webrtc import (
    CandidatePairEvent,
    CandidatePairFinal,
    CandidatePairSelected,
    CandidatePairState,
    CandidatePairStateChanged,
    CandidateSource,
    CandidateType,
    DataChannelOpened,
    DataChannelOpenRepeated,
    DescriptionSignaled,
    DtlsRole,
    DtlsSetup,
    DtlsState,
    DtlsStateChanged,
    EndOfCandidatesSent,
    GatheringEnd,
    IceChecksRefused,
    IceConnectionState,
    IceConnectionStateChanged,
    IceGatheringEnded,
    IceGatheringState,
    IceGatheringStateChanged,
    IcePolicy,
    IceRole,
    IceServerKind,
    IceServerOutcome,
    IceServerQueried,
    LocalCandidateGathered,
    PeerConnectionState,
    PeerConnectionStateChanged,
    RemoteCandidateReceived,
    RemoteCandidateRejected,
    RemoteEndOfCandidates,
    SignalingFailed,
    SignalingMessageType,
    SignalingStage,
    SignalingStreamEnded,
    SignalingStreamOpened,
    UdpSendFailed,
    UpgradeRole,
    UpgradeStep,
    WebRTCConnectionClosed,
    WebRTCEvent,
    WebRTCUpgradeFailed,
    WebRTCUpgradeStarted,
    WebRTCUpgradeSucceeded,
)

__all__ = [
    "EVENT_TYPES",
    "CandidatePairEvent",
    "CandidatePairFinal",
    "CandidatePairSelected",
    "CandidatePairState",
    "CandidatePairStateChanged",
    "CandidateSource",
    "CandidateType",
    "CircuitClosed",
    "CircuitSecured",
    "CircuitTraffic",
    "CircuitUpgradeFailed",
    "Closer",
    "ConnectionEvent",
    "DataChannelOpenRepeated",
    "DataChannelOpened",
    "DescriptionSignaled",
    "DialMethod",
    "DtlsRole",
    "DtlsSetup",
    "DtlsState",
    "DtlsStateChanged",
    "E",
    "EndOfCandidatesSent",
    "ErrorKind",
    "Event",
    "EventDecodeError",
    "GatheringEnd",
    "HoldStarted",
    "HopConnectSent",
    "HopFailed",
    "HopStatusReceived",
    "IceChecksRefused",
    "IceConnectionState",
    "IceConnectionStateChanged",
    "IceGatheringEnded",
    "IceGatheringState",
    "IceGatheringStateChanged",
    "IcePolicy",
    "IceRole",
    "IceServerKind",
    "IceServerOutcome",
    "IceServerQueried",
    "IdentifyCompleted",
    "IdentifyFailed",
    "InterruptReason",
    "LocalCandidateGathered",
    "NatTestCompleted",
    "Path",
    "PeerConnectionState",
    "PeerConnectionStateChanged",
    "PingCompleted",
    "PingFailed",
    "PingServed",
    "RelayConnected",
    "RelayDialFailed",
    "RelayDialStarted",
    "RemoteCandidateReceived",
    "RemoteCandidateRejected",
    "RemoteEndOfCandidates",
    "ReservationAccepted",
    "ReservationFailed",
    "RunFinished",
    "RunInterrupted",
    "SignalingFailed",
    "SignalingMessageType",
    "SignalingStage",
    "SignalingStreamEnded",
    "SignalingStreamOpened",
    "StepTimedOut",
    "StopConnectReceived",
    "Subject",
    "TargetResolved",
    "UdpSendFailed",
    "UpgradeNotAttempted",
    "UpgradeRole",
    "UpgradeStep",
    "WebRTCConnectionClosed",
    "WebRTCEvent",
    "WebRTCUpgradeFailed",
    "WebRTCUpgradeStarted",
    "WebRTCUpgradeSucceeded",
    "event_from_dict",
    "event_to_dict",
    "register",
]
