"""A simulator of the legacy Rails order app, for the demo, the tests and users' trials.

``strangler legacy-sim`` serves the contract in docs/legacy-api.yaml: orders waiting for
scheduled batch jobs, the per-order API around them, deterministic business rules and
fault injection (docs/legacy.md). ``create_app`` builds the Flask app for tests.
"""

from strangler.sim.app import create_app, simulator
from strangler.sim.config import SimConfig
from strangler.sim.faults import FaultConfig
from strangler.sim.rules import Rules

__all__ = ["FaultConfig", "Rules", "SimConfig", "create_app", "simulator"]
