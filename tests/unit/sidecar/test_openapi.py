"""docs/sidecar-api.yaml is kept true: same routes as the app, real answers fit its schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from werkzeug.test import TestResponse

from strangler.exceptions import UnleashAdminError
from strangler.ledger import ledger_from_url
from strangler.orders import Decision, OrderNotification, OrderStatus, Route
from strangler.sidecar.exceptions import SnsCertificateUnavailable
from tests.unit.sidecar.conftest import AUTH
from tests.unit.sidecar.fakes import FakeRollout, FakeRuntime
from tests.unit.sidecar.sns_signing import SnsSigner
from tests.unit.sidecar.test_gate_endpoint import gate_answers
from tests.unit.sidecar.test_report_endpoint import report_from_real_ledger

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "sidecar-api.yaml"
DOC: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text())
METHODS = {"get", "put", "post", "delete", "patch"}
ORDER = {"order_id": "o-1", "user_guid": "u-1", "unit_id": "n-1"}


def test_document_is_valid_openapi() -> None:
    """The document passes the OpenAPI 3.1 validator."""
    validate(DOC)


def test_routes_match_the_document(app: Flask) -> None:
    """Every route of the app is documented, and every documented operation exists."""
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method)
        for path, item in DOC["paths"].items()
        for method in item
        if method in METHODS
    }
    assert routes == documented


@pytest.fixture
def story(tmp_path: Path) -> dict[str, Any]:
    """A real story from a real SQLite ledger: routed to instant and fulfilled."""
    ledger = ledger_from_url(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    try:
        ledger.record_received(OrderNotification.from_dict(ORDER), source="notifications")
        decision = Decision(Route.INSTANT, "instant", 50, "rev-1", "in rollout")
        ledger.pin_decision("o-1", decision)
        ledger.transition("o-1", OrderStatus.FULFILLED)
        found = ledger.story("o-1")
    finally:
        ledger.close()
    assert found is not None
    return found


def exchanges(
    make_app: Callable[..., Flask],
    client: FlaskClient,
    runtime: FakeRuntime,
    signer: SnsSigner,
    story: dict[str, Any],
    rollout: FakeRollout,
    tmp_path: Path,
) -> Iterator[TestResponse]:
    """One request for each documented answer of each operation."""
    runtime.ledger.stories["o-1"] = story
    sns = {"content_type": "text/plain"}
    yield client.get("/_strangler/")
    yield client.get("/_strangler/healthz")
    yield client.get("/_strangler/readyz")
    yield client.get("/metrics")
    yield client.get("/_strangler/decide?order_id=o-1&user_guid=u-1&unit_id=n-1")
    yield client.get("/_strangler/decide?order_id=o-1")
    yield client.get("/_strangler/orders/o-1")
    yield client.get("/_strangler/orders/o-404")
    yield client.get("/_strangler/report")  # 503: the fake ledger has no orders to report on
    yield client.get("/_strangler/report?since=yesterday")
    yield report_from_real_ledger(client, runtime)
    yield from gate_answers(client, runtime, tmp_path)
    yield client.post("/_strangler/notifications", json=ORDER, headers=AUTH)
    yield client.post("/_strangler/notifications", json=ORDER, headers=AUTH)
    yield client.post("/_strangler/notifications", json={"order_id": "x"}, headers=AUTH)
    yield client.post("/_strangler/notifications", json=ORDER)
    yield client.post("/_strangler/notifications", data="x" * 70_000, headers=AUTH)
    cross_site = {**AUTH, "Origin": "https://elsewhere.example"}
    yield client.post("/_strangler/notifications", json=ORDER, headers=cross_site)
    yield client.post("/_strangler/gate", headers=cross_site)
    yield client.put(
        "/_strangler/rollout", json={"percentage": 30, "reason": "r"}, headers=cross_site
    )
    order_2 = json.dumps({**ORDER, "order_id": "o-2"})
    yield client.post("/_strangler/sns", data=json.dumps(signer.notification(order_2)), **sns)
    yield client.post("/_strangler/sns", data=json.dumps(signer.notification(order_2)), **sns)
    yield client.post("/_strangler/sns", data=json.dumps(signer.confirmation()), **sns)
    yield client.post("/_strangler/sns", data="{}", **sns)
    tampered = {**signer.notification(order_2), "Message": "{}"}
    yield client.post("/_strangler/sns", data=json.dumps(tampered), **sns)
    yield client.post("/_strangler/sns", data="x" * (301 * 1024), **sns)
    yield client.get("/_strangler/rollout", headers=AUTH)
    yield client.get("/_strangler/rollout")
    yield client.put("/_strangler/rollout", json={"percentage": 30, "reason": "r"}, headers=AUTH)
    yield client.put("/_strangler/rollout", json={"percentage": 30}, headers=AUTH)
    yield client.put("/_strangler/rollout", json={})
    with make_app(admin_token=None).test_client() as unset:
        yield unset.get("/_strangler/rollout", headers=AUTH)
        yield unset.put("/_strangler/rollout", json={}, headers=AUTH)
    rollout.evidence_missing = "mismatch: no comparisons yet: 0 of 765 needed per step"
    live = {"stage": {"name": "live", "percent": 5}, "reason": "r"}
    yield client.put("/_strangler/rollout", json=live, headers=AUTH)
    yield client.put("/_strangler/rollout", json={**live, "no_evidence": True}, headers=AUTH)
    rollout.evidence_missing = None
    yield from flag_store_down(client, runtime, rollout)
    runtime.ledger.broken = True
    yield client.get("/_strangler/readyz")
    yield client.get("/_strangler/orders/o-1")
    yield client.post("/_strangler/notifications", json=ORDER, headers=AUTH)
    yield client.post("/_strangler/sns", data=json.dumps(signer.notification(order_2)), **sns)


def test_real_answers_fit_the_documented_schemas(
    make_app: Callable[..., Flask],
    client: FlaskClient,
    runtime: FakeRuntime,
    signer: SnsSigner,
    story: dict[str, Any],
    rollout: FakeRollout,
    tmp_path: Path,
) -> None:
    """Every documented answer is produced, and each real answer validates against its schema."""
    answers = exchanges(make_app, client, runtime, signer, story, rollout, tmp_path)
    produced = {check(response) for response in answers}
    produced.add(check(certificate_unavailable(make_app, signer)))
    documented = {
        (path, method, status)
        for path, item in DOC["paths"].items()
        for method, operation in item.items()
        if method in METHODS
        for status in operation["responses"]
    }
    assert produced == documented


def flag_store_down(
    client: FlaskClient, runtime: FakeRuntime, rollout: FakeRollout
) -> Iterator[TestResponse]:
    """502s from /_strangler/rollout and the step report, 503s from the gate: Unleash
    cannot be reached."""

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise UnleashAdminError("cannot reach Unleash", url="http://unleash/api", status=None)

    rollout.show = fail  # type: ignore[method-assign]
    rollout.set_percentage = fail  # type: ignore[method-assign]
    yield client.get("/_strangler/rollout", headers=AUTH)
    yield client.put("/_strangler/rollout", json={"percentage": 30, "reason": "r"}, headers=AUTH)
    yield report_from_real_ledger(client, runtime, {"since": "step"})
    yield client.get("/_strangler/gate")
    yield client.post("/_strangler/gate")


def certificate_unavailable(make_app: Callable[..., Flask], signer: SnsSigner) -> TestResponse:
    """A 502 from /_strangler/sns: the certificate cannot be fetched."""

    def fail(url: str) -> bytes:
        raise SnsCertificateUnavailable(url, "connection refused")

    with make_app(cert_fetcher=fail).test_client() as client:
        envelope = signer.notification(json.dumps(ORDER))
        return client.post("/_strangler/sns", data=json.dumps(envelope), content_type="text/plain")


def check(response: TestResponse) -> tuple[str, str, str]:
    """Validate one answer against the document; return (path template, method, status)."""
    request = response.request
    path, method = template(request.path), request.method.lower()
    operation = DOC["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} answered undocumented {status}"
    answer = resolve(operation["responses"][status])
    content_type = response.mimetype
    assert content_type in answer["content"], f"{method} {path} {status}: {content_type}"
    schema = answer["content"][content_type]["schema"]
    if content_type == "application/json":
        Draft202012Validator({**schema, "components": DOC["components"]}).validate(response.json)
    return path, method, status


def template(path: str) -> str:
    """The documented path template a concrete path belongs to."""
    if path in DOC["paths"]:
        return path
    for candidate in DOC["paths"]:
        pattern = "^" + re.sub(r"\{\w+\}", "[^/]+", candidate) + "$"
        if re.match(pattern, path):
            return candidate
    raise AssertionError(f"{path} is not documented")


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref in the document."""
    while "$ref" in node:
        target: Any = DOC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node
