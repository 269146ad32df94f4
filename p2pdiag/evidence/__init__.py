"""Evidence from elsewhere: what a user's own program already logged, read into typed facts.

A p2pdiag trace is what p2pdiag saw; evidence is what another program wrote: a js-libp2p debug
log (`jslog.py`) or a browser's chrome://webrtc-internals dump (`webrtc_internals.py`). The log
reader streams its file through `p2pdiag/inputs.py`, matches its lines against a table of patterns
(one row a fact, so a new release's wording is a new row) and yields the facts of `events.py`, each
with the line it came from; the dump reader reads its JSON whole, capped, into one record per peer
connection; `detect.py` tells from a file's first bytes which reader it needs. Nothing here imports
more than the standard library, so a log or a dump from a support ticket is read anywhere, as a
trace is.
"""
