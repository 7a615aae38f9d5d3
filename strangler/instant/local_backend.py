"""The instant pipeline in-process: the shipped definition on the local ASL executor.

The definition's Lambda resources are filled with local ARNs that map to the handlers
of :func:`~strangler.instant.handlers.make_handlers`, so what runs here is the same
definition the template deploys. :meth:`LocalBackend.begin` runs an execution on the
thread that asks for it (a dispatcher worker, whose job is exactly that), with no hand-off
to another thread, until it ends or has to wait (a Retry interval): then the execution is
parked, the thread goes back to its caller with a future, and a timer resumes the
execution on an executor worker when the wait is over. :meth:`LocalBackend.run` does the
same and waits for the end; :meth:`LocalBackend.submit` starts one on the executor's
worker threads, at most ``max_workers`` at once (the others wait their turn in order).
Executions are kept under their execution name (the ``max_kept`` most recently used;
one running or waiting is never forgotten): a second ``run`` or ``submit`` for the same
order and mode joins or returns the first execution instead of starting another. A
finished record is kept pickled, as one bytes object: ten thousand records as live
objects made every full garbage collection walk a million of them. It is pickled only
once more than ``_MAX_LIVE`` finished records are live: a caller that has recorded an
execution's end durably calls :meth:`LocalBackend.forget` (the router, after ending the
order in the ledger), so in the usual case a record is never pickled at all.

Task timeouts are checked when a handler returns (the executor's ``inline`` mode): a
call that took longer than its TimeoutSeconds fails its state with States.Timeout, so
the definition's Retry and Catch see what Step Functions would show, only at the call's
end rather than at its deadline. That is safe for the shipped handlers: each makes one
legacy call, bounded by the adapter's connect and read timeouts (1 s + 5 s by default),
well inside the Tasks' 30 s; a LocalBackend refuses a client whose timeouts reach a
Task's. What is given up is the faithful case of a handler that never returns: it holds
its thread.
"""

from __future__ import annotations

import pickle
import random
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog

from strangler.instant.asl import Execution, StateMachine
from strangler.instant.definition import (
    FUNCTION_PLACEHOLDERS,
    LOCAL_ACCOUNT,
    LOCAL_REGION,
    STATE_MACHINE_NAME,
    execution_arn,
    execution_name,
    load_definition,
    local_function_arn,
    pipeline_input,
    substitute,
)
from strangler.instant.exceptions import ExecutionError
from strangler.instant.handlers import LegacySteps, make_handlers
from strangler.instant.results import ExecutionResult
from strangler.instant.steps import steps_from_history
from strangler.legacy_adapter import LegacyClient
from strangler.orders import OrderNotification

__all__ = ["LOCAL_STATE_MACHINE_ARN", "LocalBackend"]

LOCAL_STATE_MACHINE_ARN = (
    f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}"
)

log = structlog.get_logger()


# An execution waiting for a slot: its future, order_id, execution name and mode.
_Waiting = tuple[Future[ExecutionResult], str, str, bool]
# A kept execution: its future while it runs, its pickled record once it has finished.
_Kept = Future[ExecutionResult] | bytes
# Finished records kept live (not pickled yet), most recently finished last.
_MAX_LIVE = 256


class LocalBackend:
    """Runs the pipeline in this process (an :class:`InstantBackend`).

    ``max_workers`` bounds how many submitted executions run at once (more wait their
    turn; :meth:`run` executes on its caller's thread, so the callers bound those);
    ``max_kept`` bounds how many executions are remembered (finished ones are forgotten
    least recently used first). ``clock``, ``sleeper`` and ``rng`` go to the executor, so
    tests never really wait for a Retry's backoff. Call :meth:`close` (or use ``with``)
    to stop taking executions.
    """

    def __init__(
        self,
        legacy: LegacySteps,
        *,
        max_workers: int = 8,
        max_kept: int = 10_000,
        clock: Callable[[], datetime] | None = None,
        sleeper: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        if max_kept < 1:
            raise ValueError(f"max_kept must be at least 1, got {max_kept}")
        handlers = make_handlers(legacy)
        definition = substitute(
            load_definition(),
            {key: local_function_arn(step) for key, step in FUNCTION_PLACEHOLDERS.items()},
        )
        _check_bounded(legacy, definition)
        self.machine = StateMachine(
            definition,
            {local_function_arn(step): handler for step, handler in handlers.items()},
            clock=clock,
            sleeper=sleeper,
            rng=rng,
            name=STATE_MACHINE_NAME,
            region=LOCAL_REGION,
            account_id=LOCAL_ACCOUNT,
            task_timeouts="inline",
        )
        self._max_workers = max_workers
        self._max_kept = max_kept
        self._runs: OrderedDict[str, _Kept] = OrderedDict()
        self._live: OrderedDict[str, None] = OrderedDict()
        self._waiting: deque[_Waiting] = deque()
        self._running = 0
        self._closed = False
        self._idle = threading.Condition()
        self._lock = threading.Lock()

    def submit(self, order: OrderNotification, *, dry_run: bool = False) -> Future[ExecutionResult]:
        """Start the order's execution on a worker, or return the one already started
        (idempotent)."""
        name = execution_name(order.order_id, dry_run=dry_run)
        future, mine = self._claim(name, here=False)
        if mine:
            self._start_or_wait(future, order.order_id, name, dry_run)
        return future

    def begin(self, order: OrderNotification, *, dry_run: bool = False) -> Future[ExecutionResult]:
        """Run the order's execution on this thread until it ends or waits, or join the
        one already started (idempotent).

        The future is done when this returns unless the execution is parked (waiting for
        a Retry interval) or running elsewhere: it then settles from another thread, and
        this thread is free meanwhile. The future's exception is ExecutionError if the
        executor itself broke down.
        """
        name = execution_name(order.order_id, dry_run=dry_run)
        future, mine = self._claim(name, here=True)
        if mine:
            self._start(future, order.order_id, name, dry_run, here=True)
        return future

    def run(
        self, order: OrderNotification, *, dry_run: bool = False, timeout_s: float = 60.0
    ) -> ExecutionResult:
        """Run the order's execution (see :meth:`begin`), or join the one already
        started, and wait for its end.

        An execution started here is waited for to its end (``timeout_s`` bounds only the
        wait for one started elsewhere: a RUNNING result, no steps yet, when it passes;
        calling again joins the same execution). Raises ExecutionError if the executor
        itself broke down.
        """
        name = execution_name(order.order_id, dry_run=dry_run)
        future, mine = self._claim(name, here=True)
        if mine:
            self._start(future, order.order_id, name, dry_run, here=True)
            return future.result()
        started_at = datetime.now(UTC)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            return ExecutionResult(
                execution_id=execution_arn(LOCAL_STATE_MACHINE_ARN, name),
                order_id=order.order_id,
                status="RUNNING",
                dry_run=dry_run,
                started_at=started_at,
            )

    def get(self, order_id: str, *, dry_run: bool = False) -> ExecutionResult | None:
        """The kept record of the order's finished execution, or None (unknown or running)."""
        with self._lock:
            kept = self._runs.get(execution_name(order_id, dry_run=dry_run))
        if isinstance(kept, bytes):
            return _unpickled(kept)
        if kept is None or not kept.done() or kept.exception() is not None:
            return None
        return kept.result()

    def forget(self, order_id: str, *, dry_run: bool = False) -> None:
        """Forget the order's finished execution: the caller has recorded its end durably
        and will not ask again (a later :meth:`begin` would start a new one). One still
        running is kept."""
        name = execution_name(order_id, dry_run=dry_run)
        with self._lock:
            kept = self._runs.get(name)
            if isinstance(kept, bytes) or (kept is not None and kept.done()):
                del self._runs[name]
                self._live.pop(name, None)

    def close(self, *, wait: bool = True) -> None:
        """Stop taking executions; with ``wait``, let the running and waiting ones finish.

        Without ``wait``, the waiting ones are cancelled and the running ones left to end.
        """
        with self._lock:
            self._closed = True
            cancelled = [] if wait else list(self._waiting)
            if not wait:
                self._waiting.clear()
        for future, _order_id, name, _dry_run in cancelled:
            with self._lock:
                self._runs.pop(name, None)
            future.cancel()
        if wait:
            with self._idle:
                self._idle.wait_for(lambda: self._running == 0)

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _claim(self, name: str, *, here: bool) -> tuple[Future[ExecutionResult], bool]:
        """The execution kept under ``name``, and True when it is new (the caller runs it;
        ``here``: on this thread, taking a slot now, so that close() waits for it)."""
        with self._lock:
            kept = self._runs.get(name)
            if kept is not None:
                self._runs.move_to_end(name)
            elif self._closed:
                raise RuntimeError("this LocalBackend is closed; it takes no more executions")
            else:
                future: Future[ExecutionResult] = Future()
                self._runs[name] = future
                self._evict()
                if here:
                    self._running += 1
                return future, True
        if isinstance(kept, bytes):
            return _done_future(_unpickled(kept)), False
        return kept, False

    def _start_or_wait(
        self, future: Future[ExecutionResult], order_id: str, name: str, dry_run: bool
    ) -> None:
        """Start a submitted execution in a free slot, or queue it for the next one."""
        with self._lock:
            start_now = self._running < self._max_workers
            if start_now:
                self._running += 1
            else:
                self._waiting.append((future, order_id, name, dry_run))
        if start_now:
            self._start(future, order_id, name, dry_run)

    def _settle(
        self,
        future: Future[ExecutionResult],
        order_id: str,
        name: str,
        dry_run: bool,
        execution: Execution | None,
        error: BaseException | None,
    ) -> None:
        """Settle ``future`` with the record of ``execution`` (or with ``error``, the
        executor's failure), then hand the slot on. Exceptions that are not ``Exception``
        still propagate."""
        try:
            if execution is None:
                raise error or RuntimeError("the execution ended with no record")
            self._finished(future, name, _result(execution, order_id, dry_run))
        except BaseException as exc:
            self._broke(future, order_id, name, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._next()

    def _start(
        self,
        future: Future[ExecutionResult],
        order_id: str,
        name: str,
        dry_run: bool,
        *,
        here: bool = False,
    ) -> None:
        """Start one execution on an executor worker (``here``: on this thread until it
        ends or waits); its end settles ``future`` and starts the next waiting one."""
        future.set_running_or_notify_cancel()
        try:
            self.machine.start_then(
                pipeline_input(order_id, dry_run=dry_run),
                partial(self._settle, future, order_id, name, dry_run),
                name=name,
                on_this_thread=here,
            )
        except Exception as exc:  # could not start (bad input or name): no callback comes
            self._broke(future, order_id, name, exc)
            self._next()

    def _finished(
        self, future: Future[ExecutionResult], name: str, result: ExecutionResult
    ) -> None:
        """Hand the record to whoever waits; keep it live, and pickle the oldest live
        records beyond ``_MAX_LIVE`` (those nobody forgot)."""
        future.set_result(result)
        with self._lock:
            if self._runs.get(name) is future:
                self._live[name] = None
            excess = len(self._live) - _MAX_LIVE
            oldest = [self._live.popitem(last=False)[0] for _ in range(max(0, excess))]
            done = [(old, self._runs.get(old)) for old in oldest]
        for old, kept in done:
            if not isinstance(kept, Future):
                continue
            record = pickle.dumps(kept.result(), protocol=pickle.HIGHEST_PROTOCOL)
            with self._lock:
                if self._runs.get(old) is kept:
                    self._runs[old] = record

    def _broke(
        self, future: Future[ExecutionResult], order_id: str, name: str, exc: BaseException
    ) -> None:
        with self._lock:
            if self._runs.get(name) is future:
                del self._runs[name]  # let a later run() try again
        log.error(
            "instant_local_execution_broke", order_id=order_id, execution=name, error=repr(exc)
        )
        error = ExecutionError(f"local execution {name} of order {order_id} could not run: {exc}")
        error.__cause__ = exc
        future.set_exception(error)

    def _next(self) -> None:
        """Start the next waiting execution in this slot, or give the slot up."""
        with self._lock:
            following = self._waiting.popleft() if self._waiting else None
            if following is None:
                self._running -= 1
        if following is not None:
            self._start(*following)
            return
        if self._closed:  # only close() waits for the slots (it sets this before it waits)
            with self._idle:
                self._idle.notify_all()

    def _evict(self) -> None:
        """Forget the least recently used finished executions while more than ``max_kept``
        are kept."""
        excess = len(self._runs) - self._max_kept
        if excess <= 0:
            return
        # Oldest first, and no further than needed: a full store costs O(1) per new run,
        # not a look at every kept execution (running ones are passed over).
        evicted: list[str] = []
        for name, kept in self._runs.items():
            if isinstance(kept, bytes) or kept.done():
                evicted.append(name)
                if len(evicted) == excess:
                    break
        for name in evicted:
            del self._runs[name]
            self._live.pop(name, None)


def _unpickled(record: bytes) -> ExecutionResult:
    result: ExecutionResult = pickle.loads(record)  # noqa: S301 - pickled by _finished above
    return result


def _done_future(result: ExecutionResult) -> Future[ExecutionResult]:
    future: Future[ExecutionResult] = Future()
    future.set_result(result)
    return future


def _check_bounded(legacy: LegacySteps, definition: Mapping[str, Any]) -> None:
    """Refuse a legacy client that could keep a Task's handler past its TimeoutSeconds."""
    if not isinstance(legacy, LegacyClient):
        return
    timeouts = [
        state["TimeoutSeconds"]
        for state in definition["States"].values()
        if isinstance(state.get("TimeoutSeconds"), int | float)
    ]
    if timeouts and legacy.silent_attempt_s >= min(timeouts):
        raise ValueError(
            f"the legacy client's connect and read timeouts add up to "
            f"{legacy.silent_attempt_s:g}s, not less than the pipeline's shortest Task "
            f"TimeoutSeconds ({min(timeouts)}s): lower them so that a step's call ends first"
        )


def _result(execution: Execution, order_id: str, dry_run: bool) -> ExecutionResult:
    output = execution.output if isinstance(execution.output, Mapping) else None
    outcome = output.get("outcome") if output else None
    return ExecutionResult(
        execution_id=execution.execution_arn,
        order_id=order_id,
        status=execution.status,
        dry_run=dry_run,
        started_at=execution.start_date,
        finished_at=execution.stop_date,
        outcome=outcome if isinstance(outcome, str) else None,
        output=output,
        error=execution.error,
        cause=execution.cause,
        # The steps read nothing a history writes late: its events as recorded will do.
        steps=steps_from_history(execution.history.unwritten(), order_id=order_id, dry_run=dry_run),
        history=execution.history,
    )
