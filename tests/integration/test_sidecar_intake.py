"""Order intake from all three sources, against the legacy simulator as a real process.

- the proxy: ``strangler serve`` in front of the simulator's ``POST /orders``;
- ``POST /_strangler/notifications`` on the same sidecar;
- ``POST /_strangler/sns``: the refusals on the real process (none of them reaches out
  to AWS), and signed messages through the real app and Runtime served over loopback
  in this process, with the certificate fetcher injected (the only test-only seam).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from strangler.settings import Settings
from strangler.sidecar.app import create_app
from strangler.sidecar.state import sidecar_state
from tests.helpers import REPO_ROOT, free_port, wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, new_order, start_legacy_sim
from tests.integration.sidecar_support import AUTH, Sidecar, running_sidecar
from tests.unit.sidecar.sns_signing import SUBSCRIBE_URL, TOPIC_ARN, SnsSigner

pytestmark = pytest.mark.slow

PLAIN_HTTP_CERT_URL = "http://sns.us-east-1.amazonaws.com/cert.pem"
TERMINAL = {"fulfilled", "rejected_fraud", "payment_declined", "failed"}
NEW_ORDER = new_order("u-intake")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """The legacy simulator, its batch jobs running every second."""
    options = SimOptions(job_interval=1.0)
    with start_legacy_sim(tmp_path_factory.mktemp("sim"), options) as running:
        yield running


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, sim: RunningSim) -> Iterator[Sidecar]:
    """``strangler serve`` with the simulator as both the order service and the legacy app."""
    workdir = tmp_path_factory.mktemp("sidecar")
    with running_sidecar(
        workdir, upstream_url=sim.url, legacy_url=sim.url, sns_topic_arns=TOPIC_ARN
    ) as running:
        yield running


def story(base_url: str, order_id: str) -> dict[str, Any] | None:
    """The sidecar's story of an order, or None while it does not know it."""
    response = requests.get(f"{base_url}/_strangler/orders/{order_id}", timeout=5)
    return response.json() if response.status_code == 200 else None


def wait_for_terminal(base_url: str, order_id: str) -> dict[str, Any]:
    """Wait until the ledger has the order in a terminal status; return its story."""
    wait_until(
        lambda: (story(base_url, order_id) or {}).get("status") in TERMINAL,
        timeout=30,
        what=f"order {order_id} to become terminal",
    )
    found = story(base_url, order_id)
    assert found is not None
    return found


def test_order_created_through_the_proxy_is_taken_in(sidecar: Sidecar) -> None:
    """The order service's 201 reaches the client; the order is taken in and run to the end."""
    response = requests.post(f"{sidecar.url}/orders", json=NEW_ORDER, timeout=10)
    created = response.json()
    assert (response.status_code, created["status"]) == (201, "pending")
    assert "payment_token" not in created
    found = wait_for_terminal(sidecar.url, created["order_id"])
    assert (found["source"], found["decision"]["path"], found["status"]) == (
        "proxy",
        "legacy",
        "fulfilled",
    )


def test_failed_order_creation_takes_nothing_in(sidecar: Sidecar) -> None:
    """A 4xx from the order service is passed on and nothing reaches the ledger."""
    response = requests.post(f"{sidecar.url}/orders", json={"unit_id": "u"}, timeout=10)
    metrics = requests.get(f"{sidecar.url}/metrics", timeout=5).text
    assert response.status_code == 400
    assert 'strangler_intake_notifications_total{result="invalid",source="proxy"}' not in metrics


def test_notifications_endpoint_new_duplicate_invalid(sidecar: Sidecar) -> None:
    """202 for a new order, 200 for the same again, 400 naming fields for an invalid one."""
    url = f"{sidecar.url}/_strangler/notifications"
    order = {"order_id": "n-100", "user_guid": "u-100", "unit_id": "unit-1"}
    first = requests.post(url, json=order, headers=AUTH, timeout=10)
    again = requests.post(url, json=order, headers=AUTH, timeout=10)
    invalid = requests.post(url, json={"order_id": "n-101"}, headers=AUTH, timeout=10)
    anonymous = requests.post(url, json=order, timeout=10)
    assert [r.status_code for r in (first, again, invalid, anonymous)] == [202, 200, 400, 401]
    assert sorted(invalid.json()["fields"]) == ["unit_id", "user_guid"]
    assert (story(sidecar.url, "n-100") or {})["source"] == "notifications"
    metrics = requests.get(f"{sidecar.url}/metrics", timeout=5).text
    assert "strangler_rejected_intake 1.0" in metrics


def test_one_order_from_two_sources_is_one_order(sidecar: Sidecar) -> None:
    """An order the proxy took in and then notified again is a duplicate: one ledger row."""
    created = requests.post(f"{sidecar.url}/orders", json=NEW_ORDER, timeout=10).json()
    wait_until(
        lambda: story(sidecar.url, created["order_id"]) is not None,
        timeout=10,
        what="the intercepted order in the ledger",
    )
    notification = {k: created[k] for k in ("order_id", "user_guid", "unit_id")}
    response = requests.post(
        f"{sidecar.url}/_strangler/notifications", json=notification, headers=AUTH, timeout=10
    )
    assert (response.status_code, response.json()["duplicate"]) == (200, True)
    assert (story(sidecar.url, created["order_id"]) or {})["source"] == "proxy"


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"TopicArn": "arn:aws:sns:us-east-1:123456789012:other"}, 403, "topic_not_allowed"),
        ({"SigningCertURL": "https://127.0.0.1/cert.pem"}, 400, "invalid_sns_message"),
        (
            {"SigningCertURL": "http://sns.us-east-1.amazonaws.com/c.pem"},
            400,
            "invalid_sns_message",
        ),
        ({"SignatureVersion": "3"}, 403, "invalid_signature"),
        ({"Type": "Unknown"}, 400, "invalid_sns_message"),
    ],
    ids=["other-topic", "ip-cert-url", "http-cert-url", "unknown-version", "unknown-type"],
)
def test_sns_refusals_on_the_real_process(
    sidecar: Sidecar, signer: SnsSigner, change: dict[str, str], status: int, error: str
) -> None:
    """Messages refused before any certificate fetch get their 4xx from the real process."""
    order = json.dumps({"order_id": "sns-refused", "user_guid": "u", "unit_id": "n"})
    envelope = {**signer.notification(order), **change}
    response = requests.post(f"{sidecar.url}/_strangler/sns", data=json.dumps(envelope), timeout=10)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert story(sidecar.url, "sns-refused") is None


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    """A self-signed SNS signing identity."""
    return SnsSigner()


@dataclass
class InProcessSidecar:
    """The real app served over loopback in this process, and what it confirmed."""

    url: str
    confirmed: list[str] = field(default_factory=list)


@pytest.fixture
def sns_sidecar(tmp_path: Path, sim: RunningSim, signer: SnsSigner) -> Iterator[InProcessSidecar]:
    """The real app and Runtime over loopback, trusting the test certificate."""
    flags = tmp_path / "flags.json"
    flags.write_bytes((REPO_ROOT / "flags" / "city_orders_instant_processing.json").read_bytes())
    settings = Settings(
        data_dir=tmp_path,
        flags_file=flags,
        upstream_url=sim.url,
        legacy_url=sim.url,
        sns_topic_arns=(TOPIC_ARN,),
        admin_token="t",
    )
    confirmed: list[str] = []
    app = create_app(
        settings, cert_fetcher=lambda _url: signer.pem, subscription_confirmer=confirmed.append
    )
    state = sidecar_state(app)
    state.start()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield InProcessSidecar(f"http://127.0.0.1:{server.server_port}", confirmed)
    finally:
        server.shutdown()
        thread.join(10)
        state.stop(10)


def test_signed_sns_notifications_are_taken_in(
    sns_sidecar: InProcessSidecar, sim: RunningSim, signer: SnsSigner
) -> None:
    """A signed Notification (v1 and v2) is taken in and run; redelivery is a duplicate."""
    created = requests.post(f"{sim.url}/orders", json=NEW_ORDER, timeout=10).json()
    message = json.dumps({k: created[k] for k in ("order_id", "user_guid", "unit_id", "city")})
    url = f"{sns_sidecar.url}/_strangler/sns"
    first = requests.post(url, data=json.dumps(signer.notification(message)), timeout=10)
    again = requests.post(
        url, data=json.dumps(signer.notification(message, version="1", subject="new")), timeout=10
    )
    assert [first.status_code, again.status_code] == [202, 200]
    found = wait_for_terminal(sns_sidecar.url, created["order_id"])
    assert (found["source"], found["status"]) == ("sns", "fulfilled")


def test_signed_subscription_confirmation_is_confirmed(
    sns_sidecar: InProcessSidecar, signer: SnsSigner
) -> None:
    """A signed SubscriptionConfirmation is confirmed through the injected confirmer."""
    response = requests.post(
        f"{sns_sidecar.url}/_strangler/sns", data=json.dumps(signer.confirmation()), timeout=10
    )
    assert (response.status_code, response.json()) == (
        200,
        {"type": "SubscriptionConfirmation", "confirmed": True},
    )
    assert sns_sidecar.confirmed == [SUBSCRIBE_URL]


def test_tampered_sns_notification_is_refused(
    sns_sidecar: InProcessSidecar, signer: SnsSigner
) -> None:
    """A Notification whose Message was changed after signing is refused with 403."""
    envelope = signer.notification(json.dumps({"order_id": "x", "user_guid": "u", "unit_id": "n"}))
    envelope["Message"] = envelope["Message"].replace('"x"', '"y"')
    response = requests.post(
        f"{sns_sidecar.url}/_strangler/sns", data=json.dumps(envelope), timeout=10
    )
    assert (response.status_code, response.json()["error"]) == (403, "invalid_signature")
