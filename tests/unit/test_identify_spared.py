"""relay-check spares py-libp2p's automatic identify between its own identities and the relay by a
peerstore entry (py-libp2p 0.8.1 has no public switch); when that is not possible it goes on."""

from __future__ import annotations

from p2pdiag.probes import net
from p2pdiag.probes.relaycheck import skip_auto_identify
from p2pdiag.wire.identify import PING_PROTOCOL

RELAY = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"


def test_a_real_host_gets_the_peerstore_entry_that_spares_identify():
    host = net.make_host()
    assert skip_auto_identify(host, RELAY) is True
    store = host.get_peerstore()
    assert store.supports_protocols(net.peer_id_from_string(RELAY), [PING_PROTOCOL]) == [PING_PROTOCOL]


class _PeerstoreWithoutProtocols:
    """What a py-libp2p whose peerstore no longer takes protocols would give. The installed 0.8.1
    cannot be made to lack the method without patching it, so this stand-in has nothing at all:
    the one attribute skip_auto_identify uses is missing."""


class _HostOfAnotherVersion:
    def get_peerstore(self) -> _PeerstoreWithoutProtocols:
        return _PeerstoreWithoutProtocols()


class _HostWithoutPeerstore:
    pass


def test_without_that_api_the_check_goes_on_with_identify():
    assert skip_auto_identify(_HostOfAnotherVersion(), RELAY) is False
    assert skip_auto_identify(_HostWithoutPeerstore(), RELAY) is False
