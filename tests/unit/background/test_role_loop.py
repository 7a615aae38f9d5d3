"""RoleLoop and Cadence: periodic work under a ledger role, and the spacing of jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from structlog.testing import capture_logs

from strangler.background.role_loop import Cadence, RoleLoop
from strangler.backoff import Backoff
from strangler.exceptions import LedgerError
from tests.helpers import wait_until


class FakeRoles:
    """A ledger's roles: held or not as the test says; records every ask and give-up."""

    def __init__(self) -> None:
        self.held = True
        self.asks: list[tuple[str, str, float]] = []
        self.given_up: list[tuple[str, str]] = []
        self.give_up_error: LedgerError | None = None

    def hold_role(self, name: str, owner: str, *, seconds: float) -> bool:
        self.asks.append((name, owner, seconds))
        return self.held

    def give_up_role(self, name: str, owner: str) -> None:
        if self.give_up_error is not None:
            raise self.give_up_error
        self.given_up.append((name, owner))


class Work:
    """Counts its calls and raises, one call each, the errors queued in ``errors``."""

    def __init__(self) -> None:
        self.calls = 0
        self.errors: list[Exception] = []

    def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


@pytest.fixture
def roles() -> FakeRoles:
    return FakeRoles()


@pytest.fixture
def work() -> Work:
    return Work()


@pytest.fixture
def failures() -> list[tuple[str, float]]:
    return []


@pytest.fixture
def make_loop(
    roles: FakeRoles, work: Work, failures: list[tuple[str, float]]
) -> Iterator[Callable[..., RoleLoop]]:
    """Builds loops on the fake roles with 10 ms turns; stops them all after the test."""
    loops: list[RoleLoop] = []

    def make(**options: object) -> RoleLoop:
        settings: dict[str, object] = {
            "owner": "me",
            "role_seconds": 5.0,
            "work": work,
            "backoff": Backoff(0.01, 0.04),
            "failed": lambda exc, pause: failures.append((str(exc), pause)),
            "name": "tester",
            **options,
        }
        loop = RoleLoop(roles, "the_role", **settings)  # type: ignore[arg-type]
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        loop.stop(5)


def test_a_started_loop_works_under_the_role_and_stop_gives_it_up(
    roles: FakeRoles, work: Work, make_loop: Callable[..., RoleLoop]
) -> None:
    """Each turn asks for the role for role_seconds and works; stop ends it and gives it up."""
    loop = make_loop()
    loop.start()
    wait_until(lambda: work.calls >= 3, 5, "three turns")
    assert loop.stop(5) is True
    assert (roles.asks[0], roles.given_up) == (("the_role", "me", 5.0), [("the_role", "me")])
    assert [t for t in threading.enumerate() if t.name == "strangler-tester"] == []


def test_without_the_role_the_loop_only_asks_for_it(
    roles: FakeRoles, work: Work, make_loop: Callable[..., RoleLoop]
) -> None:
    """While another owner holds the role the loop keeps asking and never works."""
    roles.held = False
    loop = make_loop()
    loop.start()
    wait_until(lambda: len(roles.asks) >= 3, 5, "three asks")
    assert (work.calls, loop.stop(5)) == (0, True)


def test_a_lost_role_stops_the_work_until_it_is_won_back(
    roles: FakeRoles, work: Work, make_loop: Callable[..., RoleLoop]
) -> None:
    """Work stops the turn the role is lost and carries on the turn it is held again."""
    make_loop().start()
    wait_until(lambda: work.calls >= 1, 5, "a first turn")
    roles.held = False
    asks = len(roles.asks)
    wait_until(lambda: len(roles.asks) >= asks + 2, 5, "a turn without the role")
    idle = work.calls
    wait_until(lambda: len(roles.asks) >= asks + 5, 5, "more turns without the role")
    assert work.calls == idle
    roles.held = True
    wait_until(lambda: work.calls >= idle + 2, 5, "work with the role back")


def test_a_turn_that_raises_is_reported_and_the_loop_carries_on(
    work: Work, failures: list[tuple[str, float]], make_loop: Callable[..., RoleLoop]
) -> None:
    """Failures in a row back off (capped) and are passed to failed; a success resets them."""
    work.errors = [LedgerError("one"), RuntimeError("two"), ValueError("three"), OSError("four")]
    make_loop().start()
    wait_until(lambda: work.calls >= 6, 5, "turns after the failures")
    assert failures == [("one", 0.01), ("two", 0.02), ("three", 0.04), ("four", 0.04)]


def test_an_error_it_does_not_survive_ends_the_loop(
    work: Work,
    failures: list[tuple[str, float]],
    make_loop: Callable[..., RoleLoop],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception outside ``survives`` ends the thread; stop still gives the role up."""
    ended: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: ended.append(args.exc_value))
    work.errors = [OSError("disk full"), KeyError("bug")]
    loop = make_loop(survives=(OSError,))
    loop.start()
    wait_until(lambda: len(ended) == 1, 5, "the loop to end")
    assert (failures, work.calls, loop.stop(5)) == ([("disk full", 0.01)], 2, True)


def test_stop_waits_at_most_its_timeout_for_the_turn_under_way(
    roles: FakeRoles, work: Work, make_loop: Callable[..., RoleLoop]
) -> None:
    """A turn still working at the timeout makes stop return False and keep the role."""
    release = threading.Event()
    started = threading.Event()

    def stuck() -> None:
        started.set()
        release.wait(5)

    loop = make_loop(work=stuck)
    loop.start()
    assert started.wait(5) is True
    assert (loop.stop(0.05), roles.given_up) == (False, [])
    release.set()
    assert (loop.stop(5), roles.given_up) == (True, [("the_role", "me")])


def test_a_role_that_cannot_be_given_up_is_logged(
    roles: FakeRoles, work: Work, make_loop: Callable[..., RoleLoop]
) -> None:
    """A ledger error while giving the role up is a warning named after the loop, not raised."""
    roles.give_up_error = LedgerError("database is locked")
    loop = make_loop()
    loop.start()
    wait_until(lambda: work.calls >= 1, 5, "a first turn")
    with capture_logs() as logs:
        assert loop.stop(5) is True
    assert [(e["event"], e["error"]) for e in logs] == [
        ("tester_role_not_given_up", "database is locked")
    ]


def test_a_loop_runs_once_and_stop_before_start_is_harmless(
    roles: FakeRoles, make_loop: Callable[..., RoleLoop]
) -> None:
    """Starting twice is a RuntimeError; stopping a loop never started gives nothing up."""
    assert (make_loop().stop(1), roles.asks, roles.given_up) == (True, [], [])
    loop = make_loop()
    loop.start()
    with pytest.raises(RuntimeError, match="this tester was started already"):
        loop.start()


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        pytest.param([0.0], [True], id="first-ask"),
        pytest.param([100.0, 105.0, 109.9], [True, False, False], id="within-interval"),
        pytest.param([100.0, 110.0, 115.0, 121.0], [True, True, False, True], id="after-interval"),
    ],
)
def test_a_cadence_is_due_at_once_then_once_per_interval(
    times: list[float], expected: list[bool]
) -> None:
    """The first ask is due; later ones only once ``interval_s`` has passed since the last due."""
    clock = iter(times)
    cadence = Cadence(10.0, monotonic=lambda: next(clock))
    assert [cadence.due() for _ in times] == expected


def test_of_threads_asking_at_once_one_is_told_it_is_due() -> None:
    """Shared between threads, a cadence answers True to exactly one of simultaneous asks."""
    cadence = Cadence(60.0)
    barrier = threading.Barrier(8)
    answers: list[bool] = []

    def ask() -> None:
        barrier.wait()
        answers.append(cadence.due())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(answers) == [False] * 7 + [True]
