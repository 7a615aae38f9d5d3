"""One typed Settings object, built from ``STRANGLER_*`` variables at the entry points.

Precedence: explicit overrides (CLI options) > environment > TOML file
(``STRANGLER_CONFIG``) > defaults. Library code receives a Settings; it never reads
``os.environ`` itself.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from strangler.exceptions import ConfigurationError

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "STRANGLER_"
_INSTANT_BACKENDS = ("local", "stepfunctions")
_LOG_FORMATS = ("auto", "json", "console")
_LOG_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting strangler has; the README's configuration table documents each."""

    data_dir: Path = Path(".strangler")
    ledger_url: str | None = None
    flags_file: Path = Path("flags/city_orders_instant_processing.json")
    flag_name: str = "city_orders_instant_processing"
    unleash_url: str | None = None
    unleash_token: str | None = None
    unleash_admin_token: str | None = None
    unleash_project: str = "default"
    unleash_environment: str = "development"
    upstream_url: str = "http://127.0.0.1:8000"
    legacy_url: str = "http://127.0.0.1:8001"
    legacy_token: str | None = None
    instant_backend: str = "local"
    state_machine_arn: str | None = None
    aws_region: str = "us-east-1"
    sns_topic_arns: tuple[str, ...] = ()
    admin_token: str | None = None
    order_route: str = "POST /orders"
    order_fields: tuple[str, ...] = ()
    upstream_timeout_s: int = 30
    serve_host: str = "127.0.0.1"
    serve_port: int = 8080
    serve_workers: int = 1
    serve_threads: int = 16
    routing_processes: int = 1
    routing_cpus: str = "auto"
    workers: int = 4
    lease_seconds: int = 30
    max_attempts: int = 5
    poll_interval_ms: int = 1000
    retention_days: int = 30
    retention_interval_s: int = 3600
    reconcile_grace_s: int = 30
    reconcile_interval_s: int = 10
    reconcile_unknown_age_s: int = 3600
    log_format: str = "auto"
    log_level: str = "info"
    compare_max_age_s: int = 3600
    compare_sweep_interval_s: int = 30
    compare_ignore: tuple[str, ...] = ()
    compare_tolerances: tuple[str, ...] = ()
    noise_sample: float = 0.05
    live_shadow_share: int = 10

    def __post_init__(self) -> None:
        if self.instant_backend not in _INSTANT_BACKENDS:
            raise ConfigurationError(
                f"STRANGLER_INSTANT_BACKEND must be one of {', '.join(_INSTANT_BACKENDS)}, "
                f"got {self.instant_backend!r}"
            )
        if self.log_format not in _LOG_FORMATS:
            raise ConfigurationError(
                f"STRANGLER_LOG_FORMAT must be one of {', '.join(_LOG_FORMATS)}, "
                f"got {self.log_format!r}"
            )
        if self.log_level not in _LOG_LEVELS:
            raise ConfigurationError(
                f"STRANGLER_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, "
                f"got {self.log_level!r}"
            )
        _check_routing_cpus(self.routing_cpus)
        if self.workers < 1:
            raise ConfigurationError(f"STRANGLER_WORKERS must be at least 1, got {self.workers}")
        for name, least in (
            ("lease_seconds", 1),
            ("max_attempts", 1),
            ("poll_interval_ms", 10),
            ("retention_days", 0),
            ("retention_interval_s", 1),
            ("reconcile_grace_s", 0),
            ("reconcile_interval_s", 1),
            ("reconcile_unknown_age_s", 1),
            ("live_shadow_share", 0),
        ):
            value = getattr(self, name)
            if value < least:
                raise ConfigurationError(
                    f"STRANGLER_{name.upper()} must be at least {least}, got {value}"
                )

        if self.live_shadow_share > 99:
            raise ConfigurationError(
                f"STRANGLER_LIVE_SHADOW_SHARE must be at most 99, got {self.live_shadow_share}"
            )

    @property
    def effective_ledger_url(self) -> str:
        """The ledger URL, defaulting to a SQLite file in the data dir."""
        return self.ledger_url or f"sqlite:///{self.data_dir / 'ledger.sqlite3'}"

    @property
    def logging_level(self) -> int:
        """``log_level`` as a :mod:`logging` level number."""
        return _LOG_LEVELS[self.log_level]

    @property
    def audit_log(self) -> Path:
        """Where embedded-mode rollout changes are appended (JSON lines)."""
        return self.data_dir / "rollout-audit.jsonl"

    @property
    def archive_dir(self) -> Path:
        """Where ledger retention writes its gzip JSON-lines archives."""
        return self.data_dir / "archive"

    @property
    def server_mode(self) -> bool:
        """True when flags come from an Unleash server rather than the flag file."""
        return bool(self.unleash_url)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build Settings from ``STRANGLER_*`` variables, the optional TOML file, and overrides.

        Overrides whose value is None are ignored, so CLI options can be passed straight
        through. Raises ConfigurationError naming the setting that is wrong.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        config_file = env.get(f"{ENV_PREFIX}CONFIG")
        if config_file:
            raw.update(_read_toml(Path(config_file)))
        for spec in fields(cls):
            value = env.get(ENV_PREFIX + spec.name.upper())
            if value is not None and value != "":
                raw[spec.name] = value
        raw.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(raw) - {spec.name for spec in fields(cls)}
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**{name: _coerce(name, value) for name, value in raw.items()})

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _check_routing_cpus(value: str) -> None:
    items = [item.strip() for item in value.split(",")]
    if value not in ("auto", "off") and not all(item.isdigit() for item in items):
        raise ConfigurationError(
            "STRANGLER_ROUTING_CPUS must be auto, off, or CPU numbers separated by commas "
            f"(e.g. 2,3), got {value!r}"
        )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"STRANGLER_CONFIG: cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"STRANGLER_CONFIG: {path} is not valid TOML: {exc}") from exc
    section = data.get("strangler", data)
    if not isinstance(section, dict):
        raise ConfigurationError(f"STRANGLER_CONFIG: [strangler] in {path} must be a table")
    return dict(section)


def _coerce(name: str, value: Any) -> Any:
    target = {spec.name: spec.type for spec in fields(Settings)}[name]
    env_name = ENV_PREFIX + name.upper()
    if target == "Path":
        return Path(value)
    if target == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{env_name} must be an integer, got {value!r}") from None
    if target == "float":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{env_name} must be a number, got {value!r}") from None
    if target == "tuple[str, ...]":
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(item.strip() for item in items if item.strip())
    if not isinstance(value, str):
        raise ConfigurationError(f"{env_name} must be a string, got {value!r}")
    return value
