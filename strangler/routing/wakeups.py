"""Same-host wake-ups: intake tells every routing process on the same ledger at once.

Each routing process (a ``strangler serve`` routing child, an HTTP worker routing
inline, a ``strangler worker``) binds a unix datagram socket of its own, named
``<pid>-<token>.sock``, in the directory :func:`wakeup_directory` names: beside the
SQLite file, or in the data dir on PostgreSQL. After each new order is durable, intake
sends one datagram carrying the order_id to every socket there (:class:`WakeupSender`);
the routing process's thread (:class:`WakeupReceiver`) wakes its dispatcher, which claims
the order at once. No process owns the channel: whoever shares the directory shares it,
so the supervisor's children, gunicorn's workers behind nginx, several routing processes and
separately started workers all take part without being told about each other.

A wake-up is a hint, never a hand-over: the order is already in the ledger, a send that
fails is ignored, and the dispatcher's poll finds whatever a lost wake-up missed. A
socket file left by a process that died (the kernel refuses the send) is removed.

On PostgreSQL the same order also reaches every routing process by LISTEN/NOTIFY
(:mod:`strangler.ledger.notify`): :class:`OncePerOrder` lets the first wake-up about an
order through and drops the repeat, which would only make the dispatcher claim again,
find nothing, and compete with the order's own routing for the CPU and the database.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import select
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog

from strangler.orders import MAX_ID_LENGTH
from strangler.settings import Settings

__all__ = ["WAKEUP_DIR", "OncePerOrder", "WakeupReceiver", "WakeupSender", "wakeup_directory"]

WAKEUP_DIR = "wakeup"
_BESIDE_SQLITE = "-wakeup"
_SUFFIX = ".sock"
# sun_path holds 108 bytes with its final NUL; longer paths go through the directory's fd.
_MAX_SOCKET_PATH = 107
_RECEIVE_TIMEOUT_S = 1.0
_RELIST_S = 1.0
_DRAIN_LIMIT = 1024
# A datagram's payload: an order_id in UTF-8 (up to 4 bytes a character).
_MAX_PAYLOAD = 4 * MAX_ID_LENGTH
_REMEMBERED_ORDERS = 4096
_log = structlog.get_logger()


class _LedgerFile(Protocol):
    @property
    def sqlite_file(self) -> Path | None: ...


def wakeup_directory(settings: Settings, ledger: _LedgerFile) -> Path:
    """Where the routing processes sharing ``ledger`` on this host bind their sockets.

    Beside a SQLite file (``<file>-wakeup/``, as SQLite keeps ``-wal`` and ``-shm``), so
    that every process on that file takes part whatever its data dir; otherwise (on
    PostgreSQL, or in memory) ``<data dir>/wakeup/``.
    """
    sqlite_file = ledger.sqlite_file
    if sqlite_file is not None:
        return sqlite_file.with_name(sqlite_file.name + _BESIDE_SQLITE)
    return settings.data_dir / WAKEUP_DIR


class _Directory:
    """The wake-up directory, addressed by short socket paths whatever its own length."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def address(self, name: str) -> str:
        """The path to give bind() or sendto() for the socket ``name`` in this directory."""
        full = str(self.path / name)
        if len(os.fsencode(full)) <= _MAX_SOCKET_PATH:
            return full
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
            return f"/proc/self/fd/{self._fd}/{name}"

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class WakeupSender:
    """Sends a wake-up to every routing process bound in ``directory``; never raises.

    Sockets of this process are skipped (its own dispatcher is woken directly). The
    listing is read again when the directory changes (its mtime) and at least every
    second (two changes within one clock tick leave the mtime as it was), so a send
    costs one stat and one datagram per routing process. Thread-safe.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = _Directory(directory)
        self._own_prefix = f"{os.getpid()}-"
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._seen_mtime_ns = -1
        self._listed_at = 0.0
        self._targets: tuple[str, ...] = ()

    def send(self, order_id: str | None = None) -> int:
        """Wake every other routing process here about ``order_id`` (None: about whatever is
        due); returns how many were sent a datagram."""
        try:
            return self._send_all(order_id.encode() if order_id is not None else b"")
        except Exception as exc:  # a hint only: the order is durable and the poll finds it
            _log.warning("wakeup_send_failed", directory=str(self._directory.path), error=str(exc))
            return 0

    def close(self) -> None:
        """Close the socket and the directory (a later send opens them again)."""
        with self._lock:
            sock, self._socket = self._socket, None
            if sock is not None:
                sock.close()
            self._directory.close()
            self._seen_mtime_ns = -1

    def _send_all(self, payload: bytes) -> int:
        targets = self._current_targets()
        sent = 0
        for name in targets:
            if self._send_one(name, payload):
                sent += 1
        return sent

    def _current_targets(self) -> tuple[str, ...]:
        try:
            mtime_ns = os.stat(self._directory.path).st_mtime_ns
        except FileNotFoundError:
            return ()
        now = time.monotonic()
        with self._lock:
            if mtime_ns != self._seen_mtime_ns or now - self._listed_at > _RELIST_S:
                self._targets = tuple(
                    sorted(
                        name
                        for name in os.listdir(self._directory.path)
                        if name.endswith(_SUFFIX) and not name.startswith(self._own_prefix)
                    )
                )
                self._seen_mtime_ns = mtime_ns
                self._listed_at = now
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)
            return self._targets

    def _send_one(self, name: str, payload: bytes) -> bool:
        sock = self._socket
        if sock is None:
            return False
        try:
            sock.sendto(payload, self._directory.address(name))
        except BlockingIOError:
            return True  # its queue is full: it has wake-ups waiting already
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            if isinstance(exc, ConnectionRefusedError):
                self._remove_dead(name)
            return False
        return True

    def _remove_dead(self, name: str) -> None:
        """Remove the socket of a process that died without removing it (nobody is bound)."""
        try:
            (self._directory.path / name).unlink()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        _log.info("wakeup_socket_removed", socket=name)


class WakeupReceiver:
    """A socket in ``directory`` and a thread calling ``on_wake`` when datagrams arrive.

    Several datagrams waiting are drained together: ``on_wake(order_id)`` once per order
    named, ``on_wake(None)`` once for any datagram naming none. ``on_wake`` must not raise
    (the dispatcher's :meth:`wake` only sets an event).
    """

    def __init__(self, directory: Path, on_wake: Callable[[str | None], None]) -> None:
        self._directory = _Directory(directory)
        self._on_wake = on_wake
        self.name = f"{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def path(self) -> Path:
        """Where this receiver's socket is."""
        return self._directory.path / self.name

    def start(self) -> bool:
        """Bind the socket and start listening; False (logged) when it cannot be bound.

        A routing process without its socket still routes: its poll finds the orders.
        """
        if self._thread is not None:
            raise RuntimeError("this wake-up receiver was started already; build a new one")
        try:
            self._directory.path.mkdir(parents=True, exist_ok=True)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(self._directory.address(self.name))
        except OSError as exc:
            _log.warning("wakeup_socket_unavailable", socket=str(self.path), error=str(exc))
            return False
        sock.setblocking(False)
        self._socket = sock
        self._thread = threading.Thread(target=self._receive, name="strangler-wakeup", daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Remove the socket (no more wake-ups come) and stop the thread."""
        if self._thread is None or self._socket is None:
            return
        self._stopping.set()
        with contextlib.suppress(OSError):  # the thread stops at its timeout otherwise
            self._socket.sendto(b"", self._directory.address(self.name))
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            _log.warning("wakeup_socket_not_removed", socket=str(self.path), error=str(exc))
        self._thread.join(timeout)
        self._socket.close()
        self._directory.close()

    def _receive(self) -> None:
        sock = self._socket
        assert sock is not None
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while not self._stopping.is_set():
            try:
                if not poller.poll(_RECEIVE_TIMEOUT_S * 1000):
                    continue
                received = _drain(sock)
            except OSError as exc:
                if self._stopping.is_set():
                    return
                _log.warning("wakeup_receive_failed", error=str(exc))
                self._stopping.wait(_RECEIVE_TIMEOUT_S)
                continue
            if self._stopping.is_set():
                return
            for order_id in received:
                self._on_wake(order_id)


def _drain(sock: socket.socket) -> set[str | None]:
    """Read the datagrams waiting (the socket is non-blocking): the orders they name, None
    for one naming none (or not readable as an order_id). A burst is one wake-up per order."""
    named: set[str | None] = set()
    for _ in range(_DRAIN_LIMIT):
        try:
            payload = sock.recv(_MAX_PAYLOAD)
        except BlockingIOError:
            break
        try:
            named.add(payload.decode() or None)
        except UnicodeDecodeError:
            named.add(None)
    return named


class OncePerOrder:
    """Passes the first wake-up about each order on to ``wake`` and drops the repeats.

    A routing process on PostgreSQL hears of an order taken in on its host twice (a
    datagram and a notification, in either order). Both come after the order is
    committed, so the dispatcher's claim after the first finds it; the second would only
    cost a claim that finds nothing. A wake-up naming no order always passes. The last
    ``remember`` orders are remembered. Thread-safe.
    """

    def __init__(self, wake: Callable[[], None], *, remember: int = _REMEMBERED_ORDERS) -> None:
        if remember < 1:
            raise ValueError(f"remember must be at least 1, got {remember}")
        self._wake = wake
        self._remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, order_id: str | None = None) -> None:
        """Wake the dispatcher unless ``order_id`` woke it already."""
        if self.first(order_id):
            self._wake()

    def first(self, order_id: str | None) -> bool:
        """True for the first wake-up about ``order_id`` (and for one naming no order),
        False for a repeat; the order is remembered as seen."""
        if order_id is None:
            return True
        with self._lock:
            if order_id in self._seen:
                return False
            self._seen[order_id] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
        return True
