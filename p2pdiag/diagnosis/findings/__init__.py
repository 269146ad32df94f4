"""The findings catalogue: one constructor a finding, by topic; each code (codes.Code) a page in docs/verdicts/.

- relay.py: reaching the relay and what it answers (connect, identify, HOP CONNECT, RESERVE)
- circuit.py: the relayed connection (its handshake, ping, Limit, and how it ended)
- webrtc.py: the WebRTC upgrade (signaling, candidates, ICE, DTLS, the data channel)
- network.py: the network cause under a failed upgrade (UDP blocked, NAT mapping, TURN)
- reconnect.py: a dialer that keeps coming back through the relay
- relaycheck.py: relay-check's own checks (reservation reply, voucher, loop test, limits, slots)
- run.py: the run itself (a step's timeout, an interrupted run)

A constructor words a finding (title, advice, severity); deciding that it applies is the
diagnosis modules' job.
"""
