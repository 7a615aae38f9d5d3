"""docs/sidecar-api.yaml and the app agree on input: what the document allows is accepted,
what it forbids is refused (400), and every answer fits its schema.

Each operation that takes input is fed cases generated from the document by schemathesis
(positive: valid by the document; negative: invalid by it), in process, against the app
on fakes (a real SQLite ledger for the report). Rules the document cannot state in
JSON Schema are kept by mapping the generated cases: variant weights add up to 100, a
report's ``since`` is before its ``until``, a timestamp names a real calendar day; and
one it states only in words: no NUL in strings or keys nested inside extra fields.
tests/unit/sidecar/test_openapi.py checks the routes and one real answer per documented
status; the tables below pin each disagreement issue 18 found, as decided.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from strangler.ledger import SqlLedger, ledger_from_url
from strangler.orders import ISO_TIMESTAMP
from strangler.rollout.stage import DEFAULT_LIVE_SHADOW_SHARE
from tests.helpers import REPO_ROOT
from tests.unit.sidecar.conftest import AUTH
from tests.unit.sidecar.fakes import FakeRuntime

DOC: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docs" / "sidecar-api.yaml").read_text())
EXAMPLES = 60
ORDER = {"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1"}
WITH_INPUT = (
    "GET /_strangler/decide",
    "GET /_strangler/report",
    "POST /_strangler/notifications",
    "PUT /_strangler/rollout",
)
MODES = {
    "positive": (schemathesis.GenerationMode.POSITIVE, positive_data_acceptance),
    "negative": (schemathesis.GenerationMode.NEGATIVE, negative_data_rejection),
}


@pytest.fixture
def sql_ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    """A real (empty) SQLite ledger, for the report."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


def balanced(case: schemathesis.Case) -> schemathesis.Case:
    """Variant weights made to add up to 100 (a rule JSON Schema cannot state)."""
    body = case.body if isinstance(case.body, dict) else {}
    weights = body.get("variants")
    # Only weights the document allows otherwise: a negative case's must stay as drawn.
    allowed = isinstance(weights, dict) and weights and set(weights) <= {"instant", "shadow"}
    if allowed and all(_whole_percent(w) for w in weights.values()):
        names = sorted(weights)
        first = int(weights[names[0]]) if len(names) > 1 else 100
        case.body = {**body, "variants": {names[0]: first, **dict.fromkeys(names[1:], 100 - first)}}
    return case


def _whole_percent(value: object) -> bool:
    """A whole number 0..100, as JSON Schema's integer (28.0 is one)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and 0 <= value <= 100


def live_within_share(case: schemathesis.Case) -> schemathesis.Case:
    """A live stage's shadow share lowered to what its percent leaves in shadow (a rule
    across two fields, which the document states in words only)."""
    body = case.body if isinstance(case.body, dict) else {}
    stage = body.get("stage")
    if isinstance(stage, dict) and stage.get("name") == "live":
        percent = stage.get("percent")
        share = stage.get("shadow_share", DEFAULT_LIVE_SHADOW_SHARE)
        valid = type(percent) is int and type(share) is int and percent >= 1 and 0 <= share < 100
        if valid and percent + share > 100:  # a negative case's values stay as drawn
            case.body = {**body, "stage": {**stage, "shadow_share": 100 - percent}}
    return case


def ordered_window(case: schemathesis.Case) -> schemathesis.Case:
    """A report window whose since is before its until, or now (a rule JSON Schema cannot state)."""
    query = dict(case.query or {})
    since, until = query.get("since"), query.get("until")
    if isinstance(since, str) and ISO_TIMESTAMP.fullmatch(since):
        end = until if isinstance(until, str) and ISO_TIMESTAMP.fullmatch(until) else None
        if _utc(since) >= (_utc(end) if end else datetime.now(UTC)):
            del query["since"]
    case.query = query
    return case


def real_days(case: schemathesis.Case) -> schemathesis.Case:
    """Timestamps on a real calendar day (2030-02-30 fits the pattern; no such day exists)."""
    body = case.body if isinstance(case.body, dict) else None
    if body is not None and isinstance(body.get("created_at"), str):
        case.body = {**body, "created_at": _real_day(body["created_at"])}
    if case.query:
        case.query = {
            k: _real_day(v) if k in ("since", "until") else v for k, v in case.query.items()
        }
    return case


def no_nul_inside(case: schemathesis.Case) -> schemathesis.Case:
    """No NUL in strings and keys nested inside extra fields (the document says so in words)."""
    if isinstance(case.body, dict):
        case.body = {key: _without_nul(value, nested=False) for key, value in case.body.items()}
    return case


def _without_nul(value: Any, *, nested: bool) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "") if nested else value
    if isinstance(value, list):
        return [_without_nul(item, nested=True) for item in value]
    if isinstance(value, dict):
        return {k.replace("\x00", ""): _without_nul(v, nested=True) for k, v in value.items()}
    return value


def _real_day(value: Any) -> Any:
    if not isinstance(value, str) or not ISO_TIMESTAMP.fullmatch(value):
        return value
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value[:8] + "28" + value[10:]
    return value


def _utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def no_lone_surrogates(case: schemathesis.Case) -> bool:
    """No lone UTF-16 surrogate in the body: JSON's RFC 8259 leaves what a receiver does
    with one unpredictable, and the audit text's pattern cannot exclude them without
    breaking the generator's reading of it (the document says so in words)."""
    return not _has_lone_surrogate(case.body)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def sendable_query(case: schemathesis.Case) -> bool:
    """Whether the case's query can go on the wire as generated: this document's query
    parameters are all strings, and an object given for one (a negative case) reaches the
    app as the text of its Python repr, which may well be a valid string."""
    return not any(isinstance(value, dict) for value in (case.query or {}).values())


FIXES: dict[str, Callable[[schemathesis.Case], schemathesis.Case]] = {
    "PUT /_strangler/rollout": lambda case: live_within_share(balanced(case)),
    "GET /_strangler/report": lambda case: ordered_window(real_days(case)),
    "POST /_strangler/notifications": lambda case: no_nul_inside(real_days(case)),
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("label", WITH_INPUT)
def test_the_app_takes_what_the_document_allows_and_refuses_the_rest(
    app: Flask, runtime: FakeRuntime, sql_ledger: SqlLedger, label: str, mode: str
) -> None:
    """Valid input (by the document) is accepted, invalid is a 400; answers fit the schemas."""
    runtime.ledger = sql_ledger  # type: ignore[assignment]  # the report reads it; intake does not
    schema = schemathesis.openapi.from_dict(DOC)
    schema.app = app
    operation = next(
        result.ok() for result in schema.get_all_operations() if result.ok().label == label
    )
    generation, acceptance = MODES[mode]
    strategy = (
        operation.as_strategy(generation)
        .filter(sendable_query)
        .filter(no_lone_surrogates)
        .map(FIXES.get(label, lambda case: case))
    )
    checks = [
        acceptance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    ]
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case: schemathesis.Case) -> None:
        response = case.call(headers=AUTH)
        statuses.append(response.status_code)
        case.validate_response(response, checks=checks)

    call()
    assert statuses


def notify(client: FlaskClient, **fields: Any) -> tuple[int, Any]:
    """POST a notification with ``fields`` over a valid one: status, and the bad field named."""
    body = json.dumps({**ORDER, **fields}, allow_nan=True)
    answer = client.post(
        "/_strangler/notifications", data=body, content_type="application/json", headers=AUTH
    )
    return answer.status_code, sorted(answer.get_json().get("fields") or {})


def change(client: FlaskClient, body: dict[str, Any]) -> int:
    """PUT a rollout change; the status."""
    return client.put("/_strangler/rollout", json=body, headers=AUTH).status_code


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"created_at": None}, (202, [])),
        ({"created_at": ""}, (202, [])),
        ({"created_at": "2030-01-31T12:00:00Z"}, (202, [])),
        ({"created_at": "2030-01-31"}, (202, [])),
        ({"created_at": "yesterday"}, (400, ["created_at"])),
        ({"created_at": "2030-02-30"}, (400, ["created_at"])),
        ({"amount_cents": 2500.0, "quantity": 1e0}, (202, [])),
        ({"amount_cents": 2500.5}, (400, ["amount_cents"])),
        ({"city": "nyc\x07"}, (400, ["city"])),
        ({"user_guid": "\u3000"}, (400, ["user_guid"])),
    ],
    ids=[
        "created-at-null",
        "created-at-empty",
        "created-at-utc",
        "created-at-date",
        "created-at-not-a-time",
        "created-at-not-a-day",
        "integral-numbers",
        "fraction",
        "control-character",
        "blank-id",
    ],
)
def test_notification_fields_as_decided(
    client: FlaskClient, fields: dict[str, Any], expected: tuple[int, list[str]]
) -> None:
    """Each field the document and the code disagreed on answers as decided (issue 18)."""
    assert notify(client, **fields) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"percentage": 30.0, "reason": "r"}, 200),
        ({"variants": {"instant": 70.0, "shadow": 30}, "reason": "r"}, 200),
        ({"variants": {}, "reason": "r"}, 400),
        ({"percentage": 30, "reason": "r", "actor": {}}, 400),
        ({"percentage": 30, "reason": "r", "actor": None}, 400),
        ({"percentage": 30, "reason": "line\ttab\r\nnext"}, 200),
        ({"percentage": 30, "reason": "r\x07"}, 400),
        ({"variants": {"": 100}, "reason": "r"}, 400),
        ({"stage": {"name": "live", "percent": None}, "reason": "r"}, 400),
        ({"stage": {"name": "complete", "percent": 5}, "reason": "r"}, 400),
        ({"stage": {"name": "live", "percent": 5}, "reason": "r"}, 200),
    ],
    ids=[
        "integral-percentage",
        "integral-weight",
        "no-variants",
        "actor-object",
        "actor-null",
        "tab-and-newlines",
        "control-character",
        "unknown-variant",
        "null-percent",
        "complete-with-percent",
        "live-with-percent",
    ],
)
def test_rollout_changes_as_decided(
    client: FlaskClient, body: dict[str, Any], expected: int
) -> None:
    """Rollout changes the document and the code disagreed on answer as decided."""
    assert change(client, body) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("order_id=o-1&user_guid=u-1&unit_id=n-1&city=", 200),
        ("order_id=&user_guid=u-1&unit_id=n-1", 400),
        ("order_id=o%01&user_guid=u-1&unit_id=n-1", 400),
        ("order_id=o-1&user_guid=u-1&unit_id=n-1&city=a%07", 400),
    ],
    ids=["empty-city", "empty-order-id", "control-in-id", "control-in-city"],
)
def test_decide_queries_as_decided(client: FlaskClient, query: str, expected: int) -> None:
    """What the decide endpoint takes, as the document says."""
    assert client.get(f"/_strangler/decide?{query}").status_code == expected
