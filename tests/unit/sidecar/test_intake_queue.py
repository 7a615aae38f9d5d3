"""The background intake of intercepted orders: retries, back-pressure, draining."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from strangler.orders import OrderNotification
from strangler.sidecar import intake_queue
from strangler.sidecar.intake_queue import BackgroundIntake
from strangler.sidecar.metrics import SidecarMetrics
from tests.unit.sidecar.fakes import FakeRuntime

ORDER = OrderNotification(order_id="o-1", user_guid="u-1", unit_id="n-1", payment_token="tok")


def make(runtime: FakeRuntime, maxsize: int = 10) -> tuple[BackgroundIntake, SidecarMetrics]:
    """A background intake on the fake runtime, with its metrics."""
    metrics = SidecarMetrics()
    return BackgroundIntake(runtime.router, runtime.ledger, metrics, maxsize=maxsize), metrics


def counted(metrics: SidecarMetrics, result: str) -> float:
    """How many proxy intakes ended with ``result``."""
    value = metrics.registry.get_sample_value(
        "strangler_intake_notifications_total", {"source": "proxy", "result": result}
    )
    return value or 0.0


def test_transient_ledger_errors_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """An intake that fails twice is tried again and succeeds the third time."""
    runtime = FakeRuntime()
    runtime.router.fail_times = 2
    intake, metrics = make(runtime)
    monkeypatch.setattr(intake_queue, "_BACKOFF_S", 0.0)
    intake.submit_order(ORDER)
    assert (
        [o.order_id for o, _ in runtime.router.taken],
        counted(metrics, "new"),
    ) == (["o-1"], 1.0)


def test_giving_up_is_logged_loudly_without_payment_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the last attempt the order is logged as an error (no payment token) and counted."""
    runtime = FakeRuntime()
    runtime.router.fail_times = 10
    intake, metrics = make(runtime)
    monkeypatch.setattr(intake_queue, "_BACKOFF_S", 0.0)
    with capture_logs() as logs:
        intake.submit_order(ORDER)
    (line,) = [entry for entry in logs if entry["log_level"] == "error"]
    assert (line["order_id"], line["attempts"], counted(metrics, "failed")) == ("o-1", 3, 1.0)
    assert "tok" not in repr(logs)


def test_stop_drains_what_was_queued() -> None:
    """Orders queued before stop are all taken in before the thread ends."""
    runtime = FakeRuntime()
    intake, _ = make(runtime, maxsize=1000)
    intake.start()
    for n in range(50):
        intake.submit_order(OrderNotification(order_id=f"o-{n}", user_guid="u", unit_id="n"))
    intake.stop(5)
    assert len(runtime.router.taken) == 50


def test_full_queue_takes_orders_in_on_the_caller_thread() -> None:
    """When the queue is full the order is taken in at once rather than dropped."""
    runtime = FakeRuntime()
    runtime.router.hold = {"o-a"}
    intake, _ = make(runtime, maxsize=1)
    intake.start()
    intake.submit_order(OrderNotification(order_id="o-a", user_guid="u", unit_id="n"))
    assert runtime.router.arrived.wait(5)  # the worker is busy with o-a
    intake.submit_order(OrderNotification(order_id="o-b", user_guid="u", unit_id="n"))
    intake.submit_order(OrderNotification(order_id="o-c", user_guid="u", unit_id="n"))
    taken_while_busy = [o.order_id for o, _ in runtime.router.taken]
    runtime.router.gate.set()
    intake.stop(5)
    assert taken_while_busy == ["o-c"]
    assert {"o-a", "o-b", "o-c"} == {o.order_id for o, _ in runtime.router.taken}
