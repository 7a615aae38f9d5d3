"""The interpreter: runs compiled state specs, records history, applies Retry and Catch.

One :class:`Run` is one execution. It walks a machine state by state as a generator (a
loop for :mod:`~strangler.instant.asl.driver`, which makes the handler calls that have a
deadline and carries the loop on in another thread when one expires); Parallel branches
and Map iterations run as loops of their own on worker threads (the calling thread takes
a share), each with its own history :class:`~strangler.instant.asl.history.Thread`.
Input and output processing follows the language's order: InputPath, Parameters, the
state's work, ResultSelector, ResultPath, OutputPath. Values are never changed in place
(ResultPath copies the objects on its way), so branches may share their input safely.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from strangler.instant.asl import driver, workers
from strangler.instant.asl.definition import (
    ENTERED_EVENT,
    EXITED_EVENT,
    Catcher,
    ChoiceSpec,
    FailSpec,
    MachineSpec,
    MapSpec,
    ParallelSpec,
    PassSpec,
    StateSpec,
    SucceedSpec,
    TaskSpec,
    WaitSpec,
)
from strangler.instant.asl.errors import (
    NO_CHOICE_MATCHED,
    RUNTIME,
    EvaluationError,
    ExecutionTimedOut,
    PathNotFound,
    Retrier,
    StatesFailure,
    error_matches,
    next_retry_delay,
)
from strangler.instant.asl.history import Deferred, History, Thread, dumps, stamp_time
from strangler.instant.asl.ids import random_uuid
from strangler.instant.asl.intrinsics import Intrinsic
from strangler.instant.asl.paths import JsonPath, json_type, set_at
from strangler.instant.asl.tasks import Attempt, TaskResource
from strangler.instant.asl.timestamps import format_timestamp, parse_timestamp

__all__ = ["Run", "RunSettings"]

_Outcome = tuple[str | None, Any]  # (next state or None at the end, output)
# Each state type's method, by type, filled in below the class: plain functions called
# with the run (a Run holding its own bound methods would be a reference cycle, left with
# its whole history to the cyclic garbage collector when the execution ends, where
# reference counting frees it now (see strangler.routing.heap); and no bound method is
# made per state).
_STEPS: dict[type, Callable[..., _Outcome]] = {}
# States that call handlers or wait: loops, so that the driver can make the calls and
# park the execution while it waits.
_LOOP_STEPS: dict[type, Callable[..., driver.Loop]] = {}


class RunSettings:
    """What every run of one state machine shares (set up once by the StateMachine)."""

    __slots__ = (
        "clock",
        "inline_tasks",
        "max_workers",
        "rng",
        "role_arn",
        "sleeper",
        "state_machine_arn",
        "state_machine_name",
        "tasks",
    )

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        sleeper: Callable[[float], None] | None,
        rng: random.Random | None,
        max_workers: int,
        state_machine_arn: str,
        state_machine_name: str,
        role_arn: str,
        tasks: Mapping[str, TaskResource],
        inline_tasks: bool,
    ) -> None:
        self.clock = clock
        self.inline_tasks = inline_tasks
        self.sleeper = sleeper  # None: waits park the execution on the timer (see _sleep)
        self.rng = rng
        self.max_workers = max_workers
        self.state_machine_arn = state_machine_arn
        self.state_machine_name = state_machine_name
        self.role_arn = role_arn
        self.tasks = tasks


class _Aborted(Exception):
    """A branch or iteration stopped because a sibling failed."""


class _Cancel:
    """Set when the branches of a Parallel or the iterations of a Map should stop."""

    __slots__ = ("_event", "_parent")

    def __init__(self, parent: _Cancel | None) -> None:
        self._event = threading.Event()
        self._parent = parent

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set() or (self._parent is not None and self._parent.is_set())


class _Scope:
    """The context object (``$$``) of one state while it runs, built only when read."""

    __slots__ = (
        "_cached",
        "_item",
        "_run",
        "cancel",
        "entered_id",
        "entered_time",
        "name",
        "retry_count",
    )

    def __init__(
        self,
        run: Run,
        name: str,
        entered_id: int,
        entered_time: datetime | float,  # as recorded in the event (see stamp_time)
        cancel: _Cancel | None,
        item: tuple[int, Any] | None = None,
    ) -> None:
        self._run = run
        self.cancel = cancel
        self.name = name
        self.entered_id = entered_id
        self.entered_time = entered_time
        self.retry_count = 0
        self._item = item
        self._cached: dict[str, Any] | None = None

    @property
    def rng(self) -> random.Random | None:
        return self._run.settings.rng

    def for_item(self, index: int, value: Any) -> _Scope:
        """The scope an ItemSelector sees for one Map item."""
        return _Scope(
            self._run, self.name, self.entered_id, self.entered_time, self.cancel, (index, value)
        )

    def retried(self) -> None:
        self.retry_count += 1
        self._cached = None

    def context(self) -> dict[str, Any]:
        if self._cached is None:
            context = self._run.context_base()
            context["State"] = {
                "EnteredTime": format_timestamp(stamp_time(self.entered_time)),
                "Name": self.name,
                "RetryCount": self.retry_count,
            }
            if self._item is not None:
                context["Map"] = {"Item": {"Index": self._item[0], "Value": self._item[1]}}
            self._cached = context
        return self._cached

    def failure(self, error: str, detail: str, *, terminal: bool = True) -> StatesFailure:
        """A failure worded like Step Functions' runtime errors for this state."""
        return StatesFailure(
            error,
            f"An error occurred while executing the state '{self.name}' (entered at the event "
            f"id #{self.entered_id}). {detail}",
            terminal=terminal,
        )


class Run:
    """One execution in progress: call :meth:`run_machine` on the top machine."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        name: str,
        execution_arn: str,
        input_value: Any,
        deadline: datetime | None,
        extra_context: Mapping[str, Any] | None,
        input_json: str | Deferred = "null",
    ) -> None:
        self.settings = settings
        self.name = name
        self.execution_arn = execution_arn
        self.input_value = input_value
        self.input_json = input_json  # input_value's JSON text (written when read)
        self.deadline = deadline
        self.extra_context = extra_context
        self.history = History(settings.clock)
        self.start_time: datetime | None = None

    # --- the context object ------------------------------------------------------------

    def context_base(self) -> dict[str, Any]:
        """The context object without its State and Map parts."""
        assert self.start_time is not None  # set when ExecutionStarted is recorded
        context: dict[str, Any] = {
            "Execution": {
                "Id": self.execution_arn,
                "Input": self.input_value,
                "Name": self.name,
                "RoleArn": self.settings.role_arn,
                "StartTime": format_timestamp(self.start_time),
                "RedriveCount": 0,
            },
            "StateMachine": {
                "Id": self.settings.state_machine_arn,
                "Name": self.settings.state_machine_name,
            },
        }
        for key, value in (self.extra_context or {}).items():
            base = context.get(key)
            context[key] = (
                {**base, **value}
                if isinstance(base, dict) and isinstance(value, Mapping)
                else value
            )
        return context

    # --- the loop ------------------------------------------------------------------------

    def run_machine(
        self, machine: MachineSpec, value: Any, thread: Thread, cancel: _Cancel | None
    ) -> driver.Loop:
        """Run from StartAt to the end (a loop for the driver); returns the output or
        raises StatesFailure."""
        states = machine.states
        name: str | None = machine.start_at
        while name is not None:
            if cancel is not None and cancel.is_set():
                raise _Aborted
            self._check_deadline()
            spec = states[name]
            scope = self._enter(spec, value, thread, cancel)
            # States that call no handler run as plain calls: no generator per state.
            try:
                step = _STEPS.get(type(spec))
                if step is not None:
                    name, value = step(self, spec, value, thread, scope)
                else:
                    name, value = yield from _LOOP_STEPS[type(spec)](
                        self, spec, value, thread, scope
                    )
            except EvaluationError as exc:
                raise scope.failure(exc.error, exc.detail) from None
        return value

    def _enter(self, spec: StateSpec, raw: Any, thread: Thread, cancel: _Cancel | None) -> _Scope:
        """Record the state's ...StateEntered event; the state's scope."""
        event = self.history.add(
            thread,
            ENTERED_EVENT[spec.type],
            "stateEnteredEventDetails",
            {"name": spec.name, "input": thread.defer(raw), "inputDetails": {"truncated": False}},
        )
        return _Scope(self, spec.name, event["id"], event["timestamp"], cancel)

    def _check_deadline(self) -> None:
        if self.deadline is not None and self.settings.clock() >= self.deadline:
            raise ExecutionTimedOut

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        remaining = (self.deadline - self.settings.clock()).total_seconds()
        if remaining <= 0:
            raise ExecutionTimedOut
        return remaining

    def _sleep(self, seconds: float) -> driver.Loop:
        """Wait ``seconds`` (a loop): parked on the timer, holding no thread, unless a
        sleeper was injected (then it waits in this thread). Past the execution's
        deadline, waits until it and raises ExecutionTimedOut."""
        remaining = self._remaining()
        timed_out = remaining is not None and seconds >= remaining
        wait = remaining if timed_out and remaining is not None else seconds
        sleeper = self.settings.sleeper
        if sleeper is not None:
            sleeper(wait)
        elif wait > 0:
            yield driver.Park(wait)
        if timed_out:
            raise ExecutionTimedOut

    def _request_id(self) -> str:
        return random_uuid(self.settings.rng)

    # --- input and output processing ------------------------------------------------

    @staticmethod
    def _select(path: JsonPath | None, value: Any, scope: _Scope) -> Any:
        """InputPath or OutputPath: null gives an empty object."""
        if path is None:
            return {}
        if path.is_root:
            return value
        try:
            return path.find(value, scope)
        except PathNotFound as exc:
            raise EvaluationError(RUNTIME, f"Invalid path '{path.text}' : {exc.detail}") from None

    @staticmethod
    def _place(path: JsonPath | None, raw: Any, result: Any) -> Any:
        """ResultPath: null keeps the state's input, ``$`` takes the result."""
        if path is None:
            return raw
        if path.is_root:
            return result
        return set_at(path, raw, result)

    def _exit(self, spec: StateSpec, output: Any, thread: Thread) -> None:
        self.history.add(
            thread,
            EXITED_EVENT[spec.type],
            "stateExitedEventDetails",
            {
                "name": spec.name,
                "output": thread.defer(output),
                "outputDetails": {"truncated": False},
            },
        )

    def _finish(
        self,
        spec: TaskSpec | ParallelSpec | MapSpec,
        raw: Any,
        result: Any,
        thread: Thread,
        scope: _Scope,
    ) -> _Outcome:
        if spec.result_selector is not None:
            result = spec.result_selector.render(result, scope)
        output = self._select(spec.output_path, self._place(spec.result_path, raw, result), scope)
        self._exit(spec, output, thread)
        return spec.next, output

    # --- Retry and Catch -------------------------------------------------------------------

    def _retry(
        self,
        retriers: tuple[Retrier, ...],
        counts: list[int],
        failure: StatesFailure,
        scope: _Scope,
    ) -> driver.Loop:
        """Wait for the next retry (a loop); returns False when no retry is left."""
        rng = self.settings.rng or _RNG
        delay = next_retry_delay(retriers, counts, failure, rng)
        if delay is None:
            return False
        yield from self._sleep(delay)
        scope.retried()
        return True

    def _catch(
        self,
        catchers: tuple[Catcher, ...],
        spec: StateSpec,
        raw: Any,
        failure: StatesFailure,
        thread: Thread,
    ) -> _Outcome:
        for catcher in catchers:
            if error_matches(catcher.error_equals, failure):
                output = self._place(catcher.result_path, raw, failure.output())
                self._exit(spec, output, thread)
                return catcher.next, output
        raise failure

    # --- the states ------------------------------------------------------------------------

    def _pass(self, spec: PassSpec, raw: Any, thread: Thread, scope: _Scope) -> _Outcome:
        if spec.has_result:
            result = spec.result
        else:
            result = self._select(spec.input_path, raw, scope)
            if spec.parameters is not None:
                result = spec.parameters.render(result, scope)
        output = self._select(spec.output_path, self._place(spec.result_path, raw, result), scope)
        self._exit(spec, output, thread)
        return spec.next, output

    def _task(self, spec: TaskSpec, raw: Any, thread: Thread, scope: _Scope) -> driver.Loop:
        effective = self._select(spec.input_path, raw, scope)
        resource = self.settings.tasks[spec.name]
        counts = [0] * len(spec.retry)
        while True:
            params = (
                effective if spec.parameters is None else spec.parameters.render(effective, scope)
            )
            attempt = Attempt(
                self.history,
                thread,
                self._timeout(spec, effective, scope),
                self._remaining(),
                self._request_id(),
                self.settings.clock,
                self.settings.inline_tasks,
            )
            try:
                result = yield from resource.invoke(params, attempt)
            except StatesFailure as failure:
                if (yield from self._retry(spec.retry, counts, failure, scope)):
                    continue
                return self._catch(spec.catch, spec, raw, failure, thread)
            return self._finish(spec, raw, result, thread, scope)

    @staticmethod
    def _timeout(spec: TaskSpec, effective: Any, scope: _Scope) -> int | None:
        path = spec.timeout_seconds_path
        if path is None:
            return spec.timeout_seconds
        try:
            value = path.find(effective, scope)
        except PathNotFound as exc:
            raise EvaluationError(RUNTIME, f"Invalid path '{path.text}' : {exc.detail}") from None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EvaluationError(
                RUNTIME,
                f"The TimeoutSecondsPath parameter must reference a positive integer: "
                f"{path.text} == {dumps(value)}",
            )
        return value

    def _choice(self, spec: ChoiceSpec, raw: Any, thread: Thread, scope: _Scope) -> _Outcome:
        effective = self._select(spec.input_path, raw, scope)
        next_state = spec.default
        for rule in spec.choices:
            if rule.matches(effective, scope):
                next_state = rule.next
                break
        if next_state is None:
            raise scope.failure(
                NO_CHOICE_MATCHED,
                "No Choice Rule matched the input and the Choice state has no Default.",
                terminal=False,
            )
        output = self._select(spec.output_path, effective, scope)
        self._exit(spec, output, thread)
        return next_state, output

    def _wait(self, spec: WaitSpec, raw: Any, thread: Thread, scope: _Scope) -> driver.Loop:
        effective = self._select(spec.input_path, raw, scope)
        yield from self._sleep(max(0.0, self._wait_seconds(spec, effective, scope)))
        output = self._select(spec.output_path, effective, scope)
        self._exit(spec, output, thread)
        return spec.next, output

    def _wait_seconds(self, spec: WaitSpec, effective: Any, scope: _Scope) -> float:
        if spec.seconds is not None:
            return float(spec.seconds)
        if spec.timestamp is not None:
            return (spec.timestamp - self.settings.clock()).total_seconds()
        if spec.seconds_path is not None:
            value = _referenced(spec.seconds_path, effective, scope, "SecondsPath")
            if isinstance(value, bool) or not isinstance(value, int):
                raise EvaluationError(
                    RUNTIME,
                    "The SecondsPath parameter cannot be parsed as a long value: "
                    f"{spec.seconds_path.text} == {dumps(value)}",
                )
            if value < 0:
                raise EvaluationError(
                    RUNTIME,
                    "The SecondsPath parameter references a negative value: "
                    f"{spec.seconds_path.text} == {value}",
                )
            return float(value)
        assert spec.timestamp_path is not None  # the definition gives exactly one of four
        value = _referenced(spec.timestamp_path, effective, scope, "TimestampPath")
        moment = parse_timestamp(value)
        if moment is None:
            raise EvaluationError(
                RUNTIME,
                "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
                f"date-time format string: {spec.timestamp_path.text} == {value}",
            )
        return (moment - self.settings.clock()).total_seconds()

    def _succeed(self, spec: SucceedSpec, raw: Any, thread: Thread, scope: _Scope) -> _Outcome:
        output = self._select(spec.output_path, self._select(spec.input_path, raw, scope), scope)
        self._exit(spec, output, thread)
        return None, output

    def _fail(self, spec: FailSpec, raw: Any, _thread: Thread, scope: _Scope) -> _Outcome:
        error = spec.error
        cause = spec.cause
        if spec.error_path is not None:
            error = _text(spec.error_path, raw, scope, "ErrorPath")
        if spec.cause_path is not None:
            cause = _text(spec.cause_path, raw, scope, "CausePath")
        raise StatesFailure(error, cause)

    def _parallel(self, spec: ParallelSpec, raw: Any, thread: Thread, scope: _Scope) -> driver.Loop:
        effective = self._select(spec.input_path, raw, scope)
        if spec.parameters is not None:
            effective = spec.parameters.render(effective, scope)
        counts = [0] * len(spec.retry)
        while True:
            started = self.history.add(thread, "ParallelStateStarted")["id"]
            threads = [Thread(started) for _ in spec.branches]

            branch = self._branch(spec, effective, thread, threads)
            try:
                results = yield from self._concurrently(len(spec.branches), 0, branch, scope.cancel)
            except StatesFailure as failure:
                if (yield from self._retry(spec.retry, counts, failure, scope)):
                    continue
                self.history.add(thread, "ParallelStateFailed")
                return self._catch(spec.catch, spec, raw, failure, thread)
            thread.last = max(branch_thread.last for branch_thread in threads)
            self.history.add(thread, "ParallelStateSucceeded", advance=False)
            return self._finish(spec, raw, results, thread, scope)

    def _branch(
        self, spec: ParallelSpec, effective: Any, parent: Thread, threads: list[Thread]
    ) -> Callable[[int, _Cancel], driver.Loop]:
        def branch(index: int, cancel: _Cancel) -> driver.Loop:
            try:
                return (
                    yield from self.run_machine(
                        spec.branches[index], effective, threads[index], cancel
                    )
                )
            except StatesFailure:
                parent.last = threads[index].last
                raise

        return branch

    def _map(self, spec: MapSpec, raw: Any, thread: Thread, scope: _Scope) -> driver.Loop:
        effective = self._select(spec.input_path, raw, scope)
        items = _items(spec.items_path, effective, scope)
        limit = _concurrency(spec, effective, scope)
        counts = [0] * len(spec.retry)
        while True:
            self.history.add(
                thread, "MapStateStarted", "mapStateStartedEventDetails", {"length": len(items)}
            )
            try:
                iteration = self._iteration(spec, effective, items, thread, scope)
                results = yield from self._concurrently(len(items), limit, iteration, scope.cancel)
            except StatesFailure as failure:
                if (yield from self._retry(spec.retry, counts, failure, scope)):
                    continue
                self.history.add(thread, "MapStateFailed")
                return self._catch(spec.catch, spec, raw, failure, thread)
            self.history.add(thread, "MapStateSucceeded", advance=False)
            return self._finish(spec, raw, results, thread, scope)

    def _iteration(
        self, spec: MapSpec, effective: Any, items: list[Any], parent: Thread, scope: _Scope
    ) -> Callable[[int, _Cancel], driver.Loop]:
        processor = spec.processor
        assert processor is not None  # the definition always sets it
        selector = spec.item_selector
        details_key = "mapIterationStartedEventDetails"

        def iterate(index: int, cancel: _Cancel) -> driver.Loop:
            names = {"name": spec.name, "index": index}
            started = self.history.add(
                parent, "MapIterationStarted", details_key, names, advance=False
            )
            own = Thread(started["id"])
            try:
                value = items[index]
                if selector is not None:
                    value = selector.render(effective, scope.for_item(index, value))
                output = yield from self.run_machine(processor, value, own, cancel)
            except StatesFailure:
                self.history.add(
                    own,
                    "MapIterationFailed",
                    "mapIterationFailedEventDetails",
                    names,
                    advance=False,
                )
                parent.last = own.last
                raise
            except _Aborted:
                self.history.add(
                    own,
                    "MapIterationAborted",
                    "mapIterationAbortedEventDetails",
                    names,
                    advance=False,
                )
                raise
            self.history.add(
                own,
                "MapIterationSucceeded",
                "mapIterationSucceededEventDetails",
                names,
                advance=False,
            )
            parent.last = max(parent.last, own.last)
            return output

        return iterate

    def _concurrently(
        self,
        count: int,
        limit: int,
        work: Callable[[int, _Cancel], driver.Loop],
        outer: _Cancel | None,
    ) -> driver.Loop:
        """``work(i)`` for every i in order of results; at most ``limit`` at once (0: no limit).

        With room for one at a time the calling loop does the work itself; otherwise
        workers drive loops that do, and the calling thread only waits, so that the first
        failure is raised at once: the others stop at their next state transition,
        unwaited for.
        """
        results: list[Any] = [None] * count
        cancel = _Cancel(outer)
        size = min(count, limit or count, self.settings.max_workers)
        if size <= 1:
            for index in range(count):
                results[index] = yield from work(index, cancel)
            return results
        indexes = itertools.count()
        lock = threading.Lock()
        done = threading.Event()
        state: dict[str, Any] = {"error": None, "running": size}

        def worker() -> driver.Loop:
            try:
                while not cancel.is_set():
                    index = next(indexes)
                    if index >= count:
                        return
                    results[index] = yield from work(index, cancel)
            except BaseException as exc:  # handed to the calling thread below
                with lock:
                    if state["error"] is None:
                        state["error"] = exc
                cancel.set()
            finally:
                with lock:
                    state["running"] -= 1
                    if state["running"] == 0 or state["error"] is not None:
                        done.set()

        for _ in range(size):
            workers.submit(partial(driver.drive, worker(), _ignore))
        done.wait()
        error = state["error"]
        if error is not None:
            raise error
        return results


_STEPS.update(
    {PassSpec: Run._pass, ChoiceSpec: Run._choice, SucceedSpec: Run._succeed, FailSpec: Run._fail}
)
_LOOP_STEPS.update(
    {TaskSpec: Run._task, WaitSpec: Run._wait, ParallelSpec: Run._parallel, MapSpec: Run._map}
)
_RNG = random.Random()


def _ignore(_value: Any, _error: BaseException | None) -> None:
    """The end of a Map or Parallel worker's loop: it reports through shared state."""


def _referenced(path: JsonPath, effective: Any, scope: _Scope, field: str) -> Any:
    try:
        return path.find(effective, scope)
    except PathNotFound:
        raise EvaluationError(
            RUNTIME, f"The {field} parameter does not reference an input value: {path.text}"
        ) from None


def _text(source: JsonPath | Intrinsic, raw: Any, scope: _Scope, field: str) -> str:
    try:
        value = (
            source.find(raw, scope) if isinstance(source, JsonPath) else source.evaluate(raw, scope)
        )
    except PathNotFound:
        assert isinstance(source, JsonPath)
        raise EvaluationError(
            RUNTIME,
            f"The JSONPath '{source.text}' specified for the field '{field}' could not be found "
            f"in the input '{dumps(raw)}'",
        ) from None
    return value if isinstance(value, str) else dumps(value)


def _items(path: JsonPath, effective: Any, scope: _Scope) -> list[Any]:
    try:
        items = path.find(effective, scope)
    except PathNotFound as exc:
        raise EvaluationError(RUNTIME, f"Invalid path '{path.text}' : {exc.detail}") from None
    if not isinstance(items, list):
        raise EvaluationError(RUNTIME, f"Map state input must be an array but was: {dumps(items)}")
    return items


def _concurrency(spec: MapSpec, effective: Any, scope: _Scope) -> int:
    path = spec.max_concurrency_path
    if path is None:
        return spec.max_concurrency
    value = _referenced(path, effective, scope, "MaxConcurrencyPath")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EvaluationError(
            RUNTIME,
            f'The MaxConcurrencyPath field refers to value "{dumps(value)}" which is not a '
            f"valid integer >= 0: {path.text} ({json_type(value)})",
        )
    return value
