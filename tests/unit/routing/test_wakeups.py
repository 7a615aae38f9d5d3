"""Same-host wake-ups: a datagram per routing process on the data dir, never an error."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strangler.routing.wakeups import (
    OncePerOrder,
    WakeupReceiver,
    WakeupSender,
    wakeup_directory,
)
from strangler.settings import Settings
from tests.helpers import wait_until


class Counter:
    """Counts the wake-ups a receiver delivers, and keeps the orders they name."""

    def __init__(self) -> None:
        self.count = 0
        self.order_ids: list[str | None] = []
        self.woken = threading.Event()

    def __call__(self, order_id: str | None = None) -> None:
        self.count += 1
        self.order_ids.append(order_id)
        self.woken.set()


@pytest.fixture
def sender(tmp_path: Path) -> Iterator[WakeupSender]:
    """A sender to ``tmp_path/wakeup``, closed after the test."""
    sender = WakeupSender(tmp_path / "wakeup")
    yield sender
    sender.close()


def send_once(directory: Path) -> int:
    """What one send from a fresh sender to ``directory`` returns."""
    sender = WakeupSender(directory)
    try:
        return sender.send()
    finally:
        sender.close()


@pytest.fixture
def other_pid_receiver(tmp_path: Path) -> Iterator[tuple[WakeupReceiver, Counter]]:
    """A started receiver named as if another process had bound it (own sockets are skipped)."""
    counter = Counter()
    receiver = WakeupReceiver(tmp_path / "wakeup", counter)
    receiver.name = f"{os.getpid() + 1}-test.sock"
    assert receiver.start()
    yield receiver, counter
    receiver.stop()


def test_a_send_wakes_a_receiver_of_another_process(
    sender: WakeupSender, other_pid_receiver: tuple[WakeupReceiver, Counter]
) -> None:
    """One send reaches the receiver, which calls its callback."""
    _, counter = other_pid_receiver
    assert sender.send() == 1
    assert counter.woken.wait(5)


def test_a_receiver_of_this_process_is_not_sent_to(tmp_path: Path) -> None:
    """This process's own dispatcher is woken directly, so its socket is skipped."""
    counter = Counter()
    receiver = WakeupReceiver(tmp_path / "wakeup", counter)
    assert receiver.start()
    try:
        assert send_once(tmp_path / "wakeup") == 0
    finally:
        receiver.stop()


def test_a_sender_sees_a_receiver_started_after_its_first_send(
    tmp_path: Path, sender: WakeupSender, other_pid_receiver: tuple[WakeupReceiver, Counter]
) -> None:
    """The listing is read again when the directory changes."""
    receiver, counter = other_pid_receiver
    receiver.stop()
    assert sender.send() == 0
    later = WakeupReceiver(tmp_path / "wakeup", counter)
    later.name = f"{os.getpid() + 2}-later.sock"
    assert later.start()
    try:
        assert sender.send() == 1
        assert counter.woken.wait(5)
    finally:
        later.stop()


def test_a_receiver_added_within_one_mtime_tick_is_seen_within_seconds(
    tmp_path: Path, sender: WakeupSender, other_pid_receiver: tuple[WakeupReceiver, Counter]
) -> None:
    """A socket added without a visible mtime change is found by the periodic relisting."""
    directory = tmp_path / "wakeup"
    _, counter = other_pid_receiver
    assert sender.send() == 1
    seen = os.stat(directory)
    later = WakeupReceiver(directory, counter)
    later.name = f"{os.getpid() + 2}-same-tick.sock"
    assert later.start()
    os.utime(directory, ns=(seen.st_atime_ns, seen.st_mtime_ns))  # as if in the same tick
    try:
        wait_until(lambda: sender.send() == 2, 5, "the relisting to find the second socket")
    finally:
        later.stop()


def test_a_missing_directory_sends_nothing(tmp_path: Path) -> None:
    """No routing process has bound a socket here yet: nothing to send, no error."""
    assert send_once(tmp_path / "nobody") == 0


def test_a_socket_left_by_a_dead_process_is_removed(tmp_path: Path) -> None:
    """A socket file nobody is bound to (its process died) is refused, and removed."""
    directory = tmp_path / "wakeup"
    directory.mkdir()
    dead = directory / f"{os.getpid() + 1}-dead.sock"
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    bound.bind(str(dead))
    bound.close()  # the file stays, as after a SIGKILL
    assert send_once(directory) == 0
    assert not dead.exists()


def test_a_burst_of_sends_is_drained_into_few_wake_ups(
    sender: WakeupSender, other_pid_receiver: tuple[WakeupReceiver, Counter]
) -> None:
    """Many datagrams waiting are answered together, never more calls than sends."""
    _, counter = other_pid_receiver
    for _ in range(50):
        sender.send()
    wait_until(lambda: counter.count >= 1, 5, "a wake-up")
    assert counter.count <= 50


def test_a_long_data_dir_path_still_works(tmp_path: Path) -> None:
    """A directory whose socket paths exceed sun_path is addressed through its descriptor."""
    directory = tmp_path / ("d" * 120) / "wakeup"
    counter = Counter()
    receiver = WakeupReceiver(directory, counter)
    receiver.name = f"{os.getpid() + 1}-long.sock"
    assert receiver.start()
    try:
        assert receiver.path.exists()
        assert send_once(directory) == 1
        assert counter.woken.wait(5)
    finally:
        receiver.stop()
    assert not receiver.path.exists()


def test_a_failing_send_is_not_an_error(tmp_path: Path) -> None:
    """A wake-up is a hint: a directory that cannot be listed costs nothing but a log line."""
    directory = tmp_path / "wakeup"
    directory.write_text("not a directory")
    assert send_once(directory) == 0


def test_stop_removes_the_socket_and_is_quick(tmp_path: Path) -> None:
    """Stopping removes the socket file and does not wait for the receive timeout."""
    receiver = WakeupReceiver(tmp_path / "wakeup", Counter())
    assert receiver.start()
    assert receiver.path.exists()
    receiver.stop(timeout=0.5)
    assert not receiver.path.exists()


class LedgerAt:
    """A ledger as wakeup_directory sees it: its SQLite file, or None."""

    def __init__(self, sqlite_file: Path | None) -> None:
        self.sqlite_file = sqlite_file


@pytest.mark.parametrize(
    ("sqlite_file", "expected"),
    [
        pytest.param(
            Path("/srv/ledger/orders.sqlite3"), "/srv/ledger/orders.sqlite3-wakeup", id="sqlite"
        ),
        pytest.param(None, "/var/lib/strangler/wakeup", id="postgresql-or-memory"),
    ],
)
def test_the_directory_is_beside_the_sqlite_file_or_in_the_data_dir(
    sqlite_file: Path | None, expected: str
) -> None:
    """Processes on one SQLite file share its directory whatever their data dirs."""
    settings = Settings(data_dir=Path("/var/lib/strangler"))
    assert wakeup_directory(settings, LedgerAt(sqlite_file)) == Path(expected)


def test_a_wake_up_names_its_order(
    sender: WakeupSender, other_pid_receiver: tuple[WakeupReceiver, Counter]
) -> None:
    """A send about an order delivers its order_id; one about nothing in particular, None."""
    _, counter = other_pid_receiver
    assert sender.send("o-1") == 1
    wait_until(lambda: "o-1" in counter.order_ids, 5, "the wake-up about o-1")
    assert sender.send() == 1
    wait_until(lambda: None in counter.order_ids, 5, "the wake-up about nothing")
    assert counter.order_ids == [
        "o-1",
        None,
    ]


def test_the_first_wake_up_about_an_order_passes_and_its_repeat_is_dropped() -> None:
    """A datagram and a notification about one order wake the dispatcher once; a wake-up
    naming no order always passes; only the last ``remember`` orders are remembered."""
    woken: list[None] = []
    once = OncePerOrder(lambda: woken.append(None), remember=2)
    once("o-1")
    once("o-1")
    assert len(woken) == 1
    once(None)
    once(None)
    assert len(woken) == 3
    once("o-2")
    once("o-3")  # o-1 is forgotten: a very late repeat wakes, and the claim finds nothing
    once("o-1")
    once("o-3")
    assert len(woken) == 6


def test_first_and_the_wake_share_what_was_seen() -> None:
    """``first`` tells a caller acting on its own (the listener, which claims) whether the
    wake-up is the first about the order; the wake-up through the call is then a repeat."""
    woken: list[None] = []
    once = OncePerOrder(lambda: woken.append(None))
    assert (once.first("o-1"), once.first("o-1"), once.first(None)) == (True, False, True)
    once("o-1")
    once("o-2")
    assert (len(woken), once.first("o-2")) == (1, False)
