"""``strangler demo``: the simulator, the sidecar and the gate, end to end on loopback."""
