"""Evidence from elsewhere: what a user's own program already logged, read into typed facts.

A p2pdiag trace is what p2pdiag saw; evidence is what another program wrote (today: a js-libp2p
debug log, `jslog.py`). Each reader streams its file through `p2pdiag/inputs.py`, matches its
lines against a table of patterns (one row a fact, so a new release's wording is a new row) and
yields the facts of `events.py`, each with the line it came from; `detect.py` tells from a file's
first lines which reader it needs. Nothing here imports more than the standard library, so a log
from a support ticket is read anywhere, as a trace is.
"""
