"""`p2pdiag watch`: a fleet probed on intervals, its state changes as events and Prometheus metrics."""
