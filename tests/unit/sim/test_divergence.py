"""The known divergence: the per-order API deciding differently for a share of orders."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from strangler.cli import legacy_sim as sim_cli
from strangler.cli.main import main
from strangler.sim import SimConfig, create_app, simulator
from strangler.sim.divergence import diverges, parse_divergence
from strangler.sim.rules import Rules
from tests.unit.sim.api import get_order, post, run_job

IDS = [f"ord-{n}" for n in range(10_000)]


def test_a_spec_is_parsed() -> None:
    """Each step=share entry becomes a share for that step; blank entries are skipped."""
    assert dict(parse_divergence("fraud_scan=0.05, authorize_payment=0.5,")) == {
        "fraud_scan": 0.05,
        "authorize_payment": 0.5,
    }
    assert dict(parse_divergence("")) == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fraud=0.1", "'fraud=0.1' must look like STEP=SHARE"),
        ("fraud_scan", "'fraud_scan' must look like STEP=SHARE"),
        ("fraud_scan=lots", "fraud_scan: 'lots' is not a number"),
        ("fulfill=1.5", "fulfill must be between 0 and 1"),
    ],
    ids=["unknown-step", "no-share", "not-a-number", "out-of-range"],
)
def test_a_bad_spec_is_named(spec: str, message: str) -> None:
    """A wrong entry raises a ValueError that names it and says the expected form."""
    with pytest.raises(ValueError, match=message):
        parse_divergence(spec)


def test_the_same_orders_always_diverge() -> None:
    """Divergence depends on the order id and the step only: asking again answers the same."""
    first = [order_id for order_id in IDS if diverges(order_id, "fraud_scan", 0.05)]
    again = [order_id for order_id in IDS if diverges(order_id, "fraud_scan", 0.05)]
    other_step = [order_id for order_id in IDS if diverges(order_id, "fulfill", 0.05)]
    assert first == again
    assert first != other_step


@pytest.mark.parametrize("share", [0.01, 0.05, 0.5], ids=["1pct", "5pct", "half"])
def test_the_divergence_rate(share: float) -> None:
    """Over 10,000 ids the diverging count lies within 4.5 binomial standard deviations."""
    count = sum(diverges(order_id, "fraud_scan", share) for order_id in IDS)
    mean = len(IDS) * share
    spread = 4.5 * math.sqrt(len(IDS) * share * (1 - share))
    assert mean - spread <= count <= mean + spread


@pytest.fixture
def diverging_app(tmp_path: Path) -> Iterator[Flask]:
    """A simulator whose per-order API always diverges at fraud_scan and fulfill."""
    rules = Rules(api_divergence={"fraud_scan": 1.0, "fulfill": 1.0})
    app = create_app(SimConfig(db_path=tmp_path / "sim.sqlite3", scheduler=False, rules=rules))
    yield app
    simulator(app).stop()


def _order(client: FlaskClient, order_id: str, **fields: Any) -> None:
    body = {"order_id": order_id, "user_guid": "u-1", "unit_id": "x", "quantity": 2, **fields}
    assert client.post("/orders", json=body).status_code == 201


def test_the_api_diverges_and_the_batch_jobs_do_not(diverging_app: Flask) -> None:
    """The per-order API's dry run rejects an order the fraud job then passes."""
    client = diverging_app.test_client()
    _order(client, "o-1")
    status, answer = post(client, "/orders/o-1/fraud_scan", dry_run=True)
    assert (status, answer["decision"], answer["details"]) == (
        200,
        "reject",
        {"reason": "api_divergence"},
    )
    run_job(client, "fraud_scan")
    assert get_order(client, "o-1")["status"] == "fraud_checked"


def test_a_diverging_fulfilment_issues_one_voucher_more(diverging_app: Flask) -> None:
    """The per-order API's fulfil issues quantity + 1 vouchers, the batch job quantity."""
    client = diverging_app.test_client()
    _order(client, "o-1")
    _, answer = post(client, "/orders/o-1/fulfill", dry_run=True)
    for job in ("fraud_scan", "payment_authorization", "fulfillment"):
        run_job(client, job)
    assert (len(answer["details"]["vouchers"]), len(get_order(client, "o-1")["vouchers"])) == (3, 2)


def test_the_cli_option_reaches_the_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """--api-divergence is parsed into the simulator's rules; a bad one is a usage error."""
    served: list[SimConfig] = []

    def fake_serve(app: Flask, **_kwargs: Any) -> None:
        served.append(simulator(app).config)
        simulator(app).stop()

    monkeypatch.setattr(sim_cli, "serve", fake_serve)
    monkeypatch.setattr(sim_cli, "configure_logging", lambda *_args, **_kw: None)
    db = str(tmp_path / "x.sqlite3")
    ok = CliRunner().invoke(main, ["legacy-sim", "--db", db, "--api-divergence", "fraud_scan=0.05"])
    assert ok.exit_code == 0, ok.output
    assert dict(served[0].rules.api_divergence) == {"fraud_scan": 0.05}
    bad = CliRunner().invoke(main, ["legacy-sim", "--db", db, "--api-divergence", "fraud=1"])
    assert bad.exit_code == 2
    assert "--api-divergence" in bad.output
