from p2pdiag.diagnosis.limits import attribute_cut, fmt_bytes, fmt_seconds, read_duration


def test_spec_seconds_are_taken_as_they_are():
    r = read_duration(120, "go-libp2p/0.40")
    assert r.effective_s == 120 and not r.suspect_unit


def test_js_milliseconds_are_recognised():
    assert read_duration(120000, "js-libp2p/3.3.11 node/22").effective_s == 120
    # implausible whatever the agent: 120000 s is 33 hours
    r = read_duration(120000, None)
    assert r.suspect_unit and r.effective_s == 120
    # a short js limit (5000 = 5 s) is only recognised by the agent
    assert read_duration(5000, "js-libp2p/3.3.11").effective_s == 5
    assert read_duration(5000, "py-libp2p/0.8.1").effective_s == 5000


def test_no_limit():
    assert read_duration(None, None).effective_s is None
    assert read_duration(0, None).effective_s is None


def test_cut_attribution():
    two_min = read_duration(120, None)
    assert attribute_cut(120.4, 100, 100, two_min, 131072).cause == "duration"
    assert attribute_cut(30.0, 65000, 65000, two_min, 131072).cause == "data"
    assert attribute_cut(30.0, 1000, 1000, two_min, 131072).cause == "unexplained"
    assert attribute_cut(116.0, 1000, 1000, two_min, 131072).cause == "unexplained"  # too early
    # both limits reached at once: the data count is near the limit, so data
    assert attribute_cut(120.2, 64000, 64000, two_min, 131072).cause == "data"


def test_formatting():
    assert fmt_bytes(131072) == "128 KiB"
    assert fmt_bytes(12000) == "11.7 KiB"
    assert fmt_bytes(1 << 30) == "1 GiB"
    assert fmt_seconds(120) == "2 min"
    assert fmt_seconds(4) == "4 s"


def test_a_zero_duration_is_no_limit_or_one_under_a_second():
    """go-libp2p writes Limit.duration in whole seconds, truncated: its relay set to 500 ms announces 0
    and cuts at 0.5 s (tests/interop/test_go_reservation.py). A remote end that soon after a 0 is
    the relay's cut; later, or with no Limit.duration at all, it stays unexplained."""
    zero, absent = read_duration(0, "kubo/0.32.0"), read_duration(None, None)
    assert zero.effective_s is None and absent.effective_s is None  # neither is a known limit to wait for
    soon = attribute_cut(0.5, 900, 900, zero, None)
    assert soon.cause == "duration" and "announced a duration limit of 0" in soon.detail
    assert attribute_cut(30.0, 900, 900, zero, None).cause == "unexplained"
    assert attribute_cut(0.5, 900, 900, absent, None).cause == "unexplained"
    # a data cut is still a data cut
    assert attribute_cut(0.5, 4100, 10, zero, 4096).cause == "data"
