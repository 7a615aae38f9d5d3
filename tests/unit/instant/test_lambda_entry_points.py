"""The Lambda entry points: configured from STRANGLER_* variables, the legacy app over HTTP.

The legacy app is faked at urllib3's connection pool (tests/legacy_http.py), so the real
adapter runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from strangler.exceptions import ConfigurationError
from strangler.instant import dispatcher, handlers
from strangler.legacy_adapter import LegacyUnavailable
from tests.legacy_http import LegacyHTTPMock

LEGACY = "http://legacy.test"


@pytest.fixture(autouse=True)
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """A Lambda-like environment; each test starts from a cold container.

    The entry points configure structlog, which caches loggers process-wide on first
    use; the configuration call is recorded instead, so other tests' log capture works.
    """
    monkeypatch.setenv("STRANGLER_LEGACY_URL", LEGACY)
    monkeypatch.setenv("STRANGLER_LOG_FORMAT", "json")
    monkeypatch.setenv("STRANGLER_LOG_LEVEL", "debug")
    configured: list[tuple[str, int]] = []

    def configure(log_format: str, level: int) -> None:
        configured.append((log_format, level))

    monkeypatch.setattr(handlers, "configure_logging", configure)
    monkeypatch.setattr(dispatcher, "configure_logging", configure)
    handlers._lambda_handlers.cache_clear()
    dispatcher._lambda_dispatcher.cache_clear()
    yield configured
    handlers._lambda_handlers.cache_clear()
    dispatcher._lambda_dispatcher.cache_clear()


@pytest.fixture
def legacy_app() -> Iterator[LegacyHTTPMock]:
    """The legacy app, answering what each test registers."""
    with LegacyHTTPMock() as mock:
        yield mock


def test_fraud_scan_entry_point_calls_the_legacy_app(legacy_app: LegacyHTTPMock) -> None:
    """The module-level handler builds its client from the environment and calls the API."""
    legacy_app.post(
        f"{LEGACY}/orders/o-1/fraud_scan",
        json={
            "order_id": "o-1",
            "step": "fraud_scan",
            "decision": "reject",
            "order_status": "rejected_fraud",
            "dry_run": False,
            "replayed": False,
            "details": {"reason": "amount_over_limit"},
        },
    )
    context = SimpleNamespace(aws_request_id="req-1")
    output = handlers.fraud_scan({"order_id": "o-1", "dry_run": False}, context)
    assert (output["decision"], output["details"]) == ("reject", {"reason": "amount_over_limit"})
    assert json.loads(legacy_app.calls[0].request.body or b"{}") == {"dry_run": False}


def test_the_client_is_built_once_per_container(
    lambda_environment: list[tuple[str, int]], legacy_app: LegacyHTTPMock
) -> None:
    """Warm invocations reuse the first invocation's client and logging set-up (at
    STRANGLER_LOG_LEVEL)."""
    body = {
        "order_id": "o-1",
        "decision": "claimed",
        "reason": None,
        "dry_run": False,
        "replayed": False,
        "order": {},
    }
    legacy_app.post(f"{LEGACY}/orders/o-1/claim", json=body)
    handlers.claim({"order_id": "o-1", "dry_run": False}, None)
    first = handlers._lambda_handlers()
    handlers.claim({"order_id": "o-1", "dry_run": False}, None)
    assert handlers._lambda_handlers() is first
    assert lambda_environment == [("json", logging.DEBUG)]


def test_an_unavailable_legacy_app_raises_the_retryable_error(legacy_app: LegacyHTTPMock) -> None:
    """A 503 reaches Step Functions as LegacyUnavailable, which the definition retries."""
    legacy_app.post(f"{LEGACY}/orders/o-1/fulfill", status=503, json={"error": "unavailable"})
    with pytest.raises(LegacyUnavailable):
        handlers.fulfill({"order_id": "o-1", "dry_run": False}, None)


def test_dispatcher_needs_the_state_machine_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without STRANGLER_STATE_MACHINE_ARN the dispatcher refuses, naming the variable."""
    monkeypatch.delenv("STRANGLER_STATE_MACHINE_ARN", raising=False)
    with pytest.raises(ConfigurationError, match="STRANGLER_STATE_MACHINE_ARN"):
        dispatcher.dispatch({"Records": []}, None)
