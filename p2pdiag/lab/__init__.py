"""The fault lab: real network namespaces, NAT routers, firewalls and a STUN/TURN server on one box.

    from p2pdiag.lab import Lab, Topology, Router

    with Lab(Topology(a=Router(nat="symmetric"), b=Router(nat="cone", udp="blocked"))) as lab:
        lab.exec("a", ["python3", "-m", "p2pdiag", ...])
        lab.stun_url, lab.turn_url, lab.address("relay")

topology.py describes a lab (no I/O), netns.py turns it into commands (no I/O), coturn.py and
runner.py run them. See docs/lab.md.
"""

from p2pdiag.lab.runner import Lab, LabError, LabInfo, LabStatus, NeedsRoot
from p2pdiag.lab.topology import Filtering, Impairment, NatMode, Router, Topology, UdpPolicy

__all__ = ["Filtering", "Impairment", "Lab", "LabError", "LabInfo", "LabStatus", "NatMode", "NeedsRoot",
           "Router", "Topology", "UdpPolicy"]
