"""Fuzzing redaction (p2pdiag/trace/redact.py): any text is redacted without an error, every address in it
gets a placeholder of its own class, and no address that must go is left."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from p2pdiag.diagnosis.network import is_private
from p2pdiag.trace.redact import EMBEDDING, KEPT, Redactor

addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
IDENTIFYING = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                                       "169.254.0.0/16", "fc00::/7", "fe80::/10"))
separators = st.sampled_from([" ", "/", ", ", ":", "[", "]", "=", "\n", "\"", "(", ")", "."])


def _kept(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if any(ip.version == 6 and ip in n for n in EMBEDDING):  # ::ffff:a.b.c.d: as its IPv4 address
        ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return any(ip.version == n.version and ip in n for n in KEPT)


@given(st.text(max_size=200))
def test_any_text(text):
    redactor = Redactor(b"fuzz")
    once = redactor.text(text)
    assert redactor.text(text) == once  # stable within a run


@given(addresses)
def test_an_address_keeps_its_class(ip):
    new = Redactor(b"fuzz").ip(ip)
    assert new.version == ip.version and is_private(str(new)) == is_private(str(ip))
    for attribute in ("is_private", "is_global", "is_loopback", "is_link_local", "is_multicast", "is_unspecified"):
        assert getattr(new, attribute) == getattr(ip, attribute), (ip, new, attribute)
    if _kept(ip):
        assert new == ip
    elif ip.is_global or any(ip.version == n.version and ip in n for n in IDENTIFYING):
        assert new != ip  # a tiny special range (192.0.0.8/32) may have no other address of its class


@given(st.lists(st.tuples(addresses, separators, st.integers(0, 65535)), min_size=1, max_size=6))
def test_addresses_in_text_are_all_replaced(parts):
    """Addresses in a text, with ports and separators: each one that must go is gone, and the ports stay."""
    text = "".join(f"{ip}{sep}{port} " if ip.version == 4 else f"[{ip}]{sep}{port} " for ip, sep, port in parts)
    redactor = Redactor(b"fuzz")
    out = redactor.text(text)
    for ip, sep, port in parts:
        if not _kept(ip):
            assert ip in redactor._ips, (ip, text, out)
        shown = redactor._ips.get(ip, ip)
        expected = f"{shown}{sep}{port} " if ip.version == 4 else f"[{shown}]{sep}{port} "
        assert expected in out, (text, out)
