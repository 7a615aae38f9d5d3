"""CD controllers call a real sidecar's /_strangler/gate with docs/deploy.md's configuration.

Real processes: the legacy simulator (order service and legacy app) and ``strangler
serve`` in front of it, every order on the instant path. Flagger's three webhooks are
POSTed with the bodies Flagger sends (name, namespace, phase and the doc's metadata);
Argo Rollouts' web metric is a GET of the doc's URL with its headers, read with its
jsonPath. The step holds first (no orders yet), passes once instant orders are fulfilled
(with options lowered so that ten orders decide), and fails once instant orders fall
back (notifications of orders the legacy app does not know: it refuses the claim).
Each answer's status is the documented one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from tests.helpers import wait_until
from tests.integration.legacy_sim import RunningSim, SimOptions, new_order, start_legacy_sim
from tests.integration.sidecar_support import AUTH, Sidecar, running_sidecar
from tests.unit.test_deploy_docs import argo_metric, flagger_webhooks

# What lets ten orders decide the pass (the doc's options need 200 compared orders).
FEW_ORDERS = {"min_orders": "10", "no_evidence": "true", "max_error_rate": "50%"}
FAILING = 30

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSim]:
    """The legacy simulator, batch jobs left to the test (none run)."""
    with start_legacy_sim(tmp_path_factory.mktemp("sim"), SimOptions(scheduler=False)) as running:
        yield running


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory, sim: RunningSim) -> Iterator[Sidecar]:
    """``strangler serve`` in front of the simulator, every order to the instant path."""
    with running_sidecar(
        tmp_path_factory.mktemp("sidecar"), upstream_url=sim.url, legacy_url=sim.url
    ) as running:
        for change in ({"variants": {"instant": 100}}, {"percentage": 100}):
            requests.put(
                f"{running.url}/_strangler/rollout",
                # A new ledger has no comparisons: going live says so (issue 21).
                json={**change, "reason": "gate webhook test", "no_evidence": True},
                headers=AUTH,
                timeout=5,
            ).raise_for_status()
        probe = {"order_id": "p", "user_guid": "p", "unit_id": "p"}
        wait_until(
            lambda: _get(f"{running.url}/_strangler/decide", params=probe)["path"] == "instant",
            15,
            "the routing flag to send orders to instant",
        )
        yield running


def _get(url: str, **kwargs: Any) -> dict[str, Any]:
    answer = requests.get(url, timeout=10, **kwargs)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def flagger_call(sidecar: Sidecar, hook: dict[str, Any], **extra: str) -> requests.Response:
    """POST as Flagger does for one webhook: its URL's path on the sidecar, Flagger's body."""
    body = {
        "name": "orders",
        "namespace": "shop",
        "phase": "Progressing",
        "metadata": {**hook["metadata"], **extra},
    }
    path = requests.utils.urlparse(hook["url"]).path
    return requests.post(f"{sidecar.url}{path}", json=body, timeout=hook_timeout(hook))


def hook_timeout(hook: dict[str, Any]) -> float:
    """Flagger's webhook timeout (``10s``) in seconds."""
    return float(str(hook["timeout"]).removesuffix("s"))


def argo_call(sidecar: Sidecar, **extra: str) -> tuple[int, str]:
    """GET as Argo's web provider does: the doc's URL and headers; (status, jsonPath value)."""
    web = argo_metric()["provider"]["web"]
    url = requests.utils.urlparse(web["url"])
    headers = {header["key"]: header["value"] for header in web["headers"]}
    query = {**dict(parse_qsl(url.query)), **extra}
    answer = requests.get(
        f"{sidecar.url}{url.path}",
        params=query,
        headers=headers,
        timeout=web["timeoutSeconds"],
    )
    field = web["jsonPath"].removeprefix("{$.").removesuffix("}")
    return answer.status_code, str(answer.json()[field])


def statuses(sidecar: Sidecar, **extra: str) -> dict[str, int]:
    """Each Flagger webhook's status, by type."""
    return {
        kind: flagger_call(sidecar, hook, **extra).status_code
        for kind, hook in flagger_webhooks().items()
    }


def send_orders(sidecar: Sidecar, count: int, prefix: str) -> list[str]:
    """Orders through the proxy (the simulator creates them, the sidecar takes them in)."""
    ids = []
    for n in range(count):
        answer = requests.post(f"{sidecar.url}/orders", json=new_order(f"{prefix}-{n}"), timeout=10)
        answer.raise_for_status()
        ids.append(str(answer.json()["order_id"]))
    return ids


def test_each_outcome_has_its_documented_status(sidecar: Sidecar) -> None:
    """hold: 423 everywhere (Argo 200 'hold'); pass: 200, rollback hook 409; fail: 412,
    rollback hook 200 (Argo 200 'fail')."""
    held = statuses(sidecar)
    held_argo = argo_call(sidecar)

    for order_id in send_orders(sidecar, 10, "good"):
        wait_until(
            lambda o=order_id: (
                _get(f"{sidecar.url}/_strangler/orders/{o}")["status"] == "fulfilled"
            ),
            30,
            f"instant order {order_id} fulfilled",
        )
    passed = statuses(sidecar, **FEW_ORDERS)
    passed_argo = argo_call(sidecar, **FEW_ORDERS)

    for n in range(FAILING):
        unknown = {"order_id": f"unknown-{n}", "user_guid": f"bad-{n}", "unit_id": "unit-1"}
        requests.post(
            f"{sidecar.url}/_strangler/notifications", json=unknown, headers=AUTH, timeout=10
        ).raise_for_status()
    wait_until(
        lambda: argo_call(sidecar)[1] == "fail",
        60,
        "the gate to fail the step",
        detail=lambda: argo_body(sidecar),
    )
    failed = statuses(sidecar)
    failed_argo = argo_call(sidecar)

    pass_ = {"confirm-traffic-increase": 200, "confirm-promotion": 200, "rollback": 409}
    fail = {"confirm-traffic-increase": 412, "confirm-promotion": 412, "rollback": 200}
    assert (held, held_argo) == (dict.fromkeys(pass_, 423), (200, "hold"))
    assert (passed, passed_argo) == (pass_, (200, "pass"))
    assert (failed, failed_argo) == (fail, (200, "fail"))


def argo_body(sidecar: Sidecar) -> dict[str, Any]:
    """The whole answer Argo's URL gets, to explain a failure."""
    web = argo_metric()["provider"]["web"]
    url = requests.utils.urlparse(web["url"])
    return _get(f"{sidecar.url}{url.path}?{url.query}")


def test_a_browser_cross_site_post_is_refused_but_a_server_call_is_not(sidecar: Sidecar) -> None:
    """Flagger sends no browser headers and is answered; a cross-site browser POST is not."""
    hook = flagger_webhooks()["confirm-promotion"]
    server = flagger_call(sidecar, hook)
    browser = requests.post(
        f"{sidecar.url}/_strangler/gate",
        json={"metadata": {}},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        timeout=10,
    )

    assert (server.status_code in {200, 412, 423}, browser.status_code) == (True, 403)
