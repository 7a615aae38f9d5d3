"""The simulator's answers, status by status, match docs/legacy-api.yaml."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.helpers import REPO_ROOT
from tests.integration.legacy_sim import RunningSim, SimOptions, start_legacy_sim

pytestmark = pytest.mark.slow

SPEC_PATH = REPO_ROOT / "docs" / "legacy-api.yaml"
SPEC_URI = "urn:strangler:legacy-api"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
REGISTRY: Registry = Registry().with_resource(
    SPEC_URI, Resource.from_contents(SPEC, default_specification=DRAFT202012)
)


class ContractChecker:
    """Sends requests to the simulator and checks each answer against the document."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.seen: set[tuple[str, str, int]] = set()

    def call(
        self,
        method: str,
        template: str,
        expected: int,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Send ``method template`` (path parameters in kwargs['path']) and check the answer."""
        path = template.format(**kwargs.pop("path", {}))
        response = requests.request(
            method,
            self.base_url + path,
            headers={**self.headers, **(headers or {})},
            timeout=10,
            **kwargs,
        )
        assert response.status_code == expected, response.text
        check_answer(method, template, response)
        self.seen.add((method.lower(), template, response.status_code))
        return response.json()


def check_answer(method: str, template: str, response: requests.Response) -> None:
    """Assert that the status is documented for the operation and the body fits its schema."""
    operation = SPEC["paths"][template][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, (
        f"{method} {template} answered {response.status_code}, which the document lacks"
    )
    if "$ref" in documented:
        documented = _resolve(documented["$ref"])
    schema = documented["content"]["application/json"]["schema"]
    assert response.headers["Content-Type"].startswith("application/json")
    validator = Draft202012Validator(_absolute(schema), registry=REGISTRY)
    errors = sorted(validator.iter_errors(response.json()), key=str)
    assert not errors, f"{method} {template} {response.status_code}: {errors[0].message}"


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    resolved: dict[str, Any] = node
    return resolved


def _absolute(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else _absolute(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_absolute(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """A simulator with a bearer token and jobs only on demand."""
    options = SimOptions(scheduler=False, token="contract-token")
    with start_legacy_sim(tmp_path_factory.mktemp("openapi"), options) as running:
        yield running


def test_the_document_is_valid_openapi() -> None:
    """docs/legacy-api.yaml is a valid OpenAPI 3.1 document."""
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


def test_every_operation_answers_as_documented(sim: RunningSim) -> None:
    """Every operation, on its success and error paths, answers with a documented body."""
    api = ContractChecker(sim.url, token="contract-token")
    order = {
        "user_guid": "user-1",
        "unit_id": "unit-1",
        "amount_cents": 900,
        "quantity": 2,
        "payment_token": "tok_visa_4242",
        "city": "boston",
        "currency": "USD",
    }
    ids = {"order_id": "ord-c1"}

    api.call("GET", "/healthz", 200)
    api.call("POST", "/orders", 201, json={**order, **ids})
    api.call("POST", "/orders", 200, json={**order, **ids})
    assigned = api.call("POST", "/orders", 201, json=order, headers={"Idempotency-Key": "c-2"})
    api.call("POST", "/orders", 400, json={"unit_id": "u"})
    api.call("POST", "/orders", 413, json={"user_guid": "x" * 70_000, "unit_id": "u"})
    api.call("GET", "/orders", 200, params={"limit": 1})
    api.call("GET", "/orders", 400, params={"updated_since": "soon"})
    api.call("GET", "/orders/{order_id}", 200, path=ids)
    api.call("GET", "/orders/{order_id}", 404, path={"order_id": "ord-none"})

    api.call("POST", "/orders/{order_id}/claim", 200, path=ids, json={"dry_run": True})
    api.call("POST", "/orders/{order_id}/claim", 200, path=ids, headers={"Idempotency-Key": "k"})
    api.call("POST", "/orders/{order_id}/claim", 409, path=ids, headers={"Idempotency-Key": "j"})
    api.call("POST", "/orders/{order_id}/claim", 404, path={"order_id": "ord-none"})
    api.call("POST", "/orders/{order_id}/claim", 400, path=ids, json={"dry_run": "y"})
    api.call("POST", "/orders/{order_id}/authorize_payment", 409, path=ids)
    api.call("POST", "/orders/{order_id}/fraud_scan", 200, path=ids)
    api.call("POST", "/orders/{order_id}/fraud_scan", 200, path=ids)
    api.call("POST", "/orders/{order_id}/authorize_payment", 200, path=ids)
    api.call("POST", "/orders/{order_id}/fulfill", 200, path=ids)
    api.call("POST", "/orders/{order_id}/fulfill", 404, path={"order_id": "ord-none"})
    api.call("POST", "/orders/{order_id}/fraud_scan", 400, path=ids, params={"dry_run": "x"})
    api.call("POST", "/orders/{order_id}/release", 200, path=ids, json={"reason": "done"})
    api.call("POST", "/orders/{order_id}/release", 400, path=ids, json={"reason": 3})
    api.call("POST", "/orders/{order_id}/release", 404, path={"order_id": "ord-none"})

    gateway = {"order_id": "ord-c3"}
    api.call("POST", "/orders", 201, json={**order, **gateway, "payment_token": "error_x"})
    api.call("POST", "/orders/{order_id}/claim", 200, path=gateway)
    api.call("POST", "/orders/{order_id}/fraud_scan", 200, path=gateway)
    api.call("POST", "/orders/{order_id}/authorize_payment", 502, path=gateway)
    api.call("POST", "/orders/{order_id}/fulfill", 200, path=gateway, json={"dry_run": True})

    assigned_id = {"order_id": assigned["order_id"]}
    api.call("POST", "/jobs/{job}/run", 200, path={"job": "fraud_scan"})
    api.call("POST", "/jobs/{job}/run", 200, path={"job": "payment_authorization"})
    api.call("POST", "/jobs/{job}/run", 404, path={"job": "cleanup"})
    api.call("POST", "/orders/{order_id}/claim", 409, path=assigned_id)
    api.call("POST", "/orders/{order_id}/fraud_scan", 409, path=assigned_id)
    api.call("GET", "/jobs", 200)
    api.call("GET", "/orders/{order_id}", 200, path=assigned_id)
    api.call("GET", "/orders", 200, params={"status": "authorized"})

    api.call("GET", "/_sim/faults", 200)
    api.call("PUT", "/_sim/faults", 400, json={"outage": "flood"})
    api.call("PUT", "/_sim/faults", 200, json={"error_rate": 1.0})
    api.call("GET", "/orders", 500)
    api.call("GET", "/jobs", 500)
    api.call("GET", "/orders/{order_id}", 500, path=ids)
    api.call("PUT", "/_sim/faults", 200, json={"outage": "hang", "outage_seconds": 0.3})
    api.call("POST", "/orders", 503, json=order)
    api.call("PUT", "/_sim/faults", 200, json={})

    anonymous = ContractChecker(sim.url)
    anonymous.call("GET", "/orders", 401)
    anonymous.call("GET", "/_sim/faults", 401)
    anonymous.call("GET", "/healthz", 200)

    exercised = {(method, template) for method, template, _ in api.seen | anonymous.seen}
    documented = {
        (method, template)
        for template, item in SPEC["paths"].items()
        for method in item
        if method in ("get", "post", "put")
    }
    assert documented == exercised


def test_every_documented_error_code_is_used_by_the_simulator() -> None:
    """The 409 codes the document promises are the ones the simulator's source raises."""
    conflict = SPEC["components"]["responses"]["Conflict"]["description"]
    promised = set(re.findall(r"`(\w+)`", conflict.split("one of", 1)[1]))
    source = "\n".join(
        path.read_text() for path in Path(REPO_ROOT / "strangler" / "sim").glob("*.py")
    )
    assert {code for code in promised if f'"{code}"' not in source} == set()
    assert promised == {
        "claimed_elsewhere",
        "batch_owned",
        "terminal",
        "not_claimed",
        "wrong_status",
        "job_running",
    }
