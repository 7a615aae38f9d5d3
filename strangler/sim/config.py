"""The simulator's configuration, built by ``strangler legacy-sim`` or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from strangler.sim.faults import FaultConfig
from strangler.sim.rules import Rules

__all__ = ["DEFAULT_JOB_INTERVAL_S", "SimConfig"]

DEFAULT_JOB_INTERVAL_S = 300.0
MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything the simulator needs; credentials stay out of ``repr``.

    ``scheduler`` False means jobs run only when asked (``POST /jobs/<name>/run``).
    """

    db_path: Path
    job_interval_s: float = DEFAULT_JOB_INTERVAL_S
    batch_size: int = 100
    seed: int | None = None
    scheduler: bool = True
    token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    rules: Rules = field(default_factory=Rules)
    faults: FaultConfig = field(default_factory=FaultConfig)

    def __post_init__(self) -> None:
        if self.job_interval_s <= 0:
            raise ValueError(f"job interval must be positive, got {self.job_interval_s}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(
                f"batch size must be between 1 and {MAX_BATCH_SIZE}, got {self.batch_size}"
            )
        if self.token is not None and self.basic_auth is not None:
            raise ValueError("give the simulator a bearer token or basic auth, not both")
