"""StateMachine: an ASL definition bound to Python handlers, run in-process."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any

from strangler.instant.asl import driver
from strangler.instant.asl.definition import Definition, TaskSpec, parse_definition
from strangler.instant.asl.errors import TIMEOUT, ExecutionTimedOut, StatesFailure
from strangler.instant.asl.execution import Execution
from strangler.instant.asl.executor import Run, RunSettings
from strangler.instant.asl.history import (
    NOT_PLAIN,
    Thread,
    dumps,
    plain_copy,
    stamp_time,
    utc_now,
)
from strangler.instant.asl.ids import random_uuid
from strangler.instant.asl.tasks import (
    LAMBDA_INVOKE,
    FunctionResolver,
    Handler,
    LambdaFunctionTask,
    LambdaInvokeTask,
    ServiceTask,
    TaskResource,
    fresh_copy,
    invoked_name,
    parse_function_reference,
)
from strangler.instant.exceptions import DefinitionError, ExecutionError

__all__ = ["StateMachine"]

_NAME = re.compile(r"[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_ACCOUNT = re.compile(r"\d{12}")
_LAMBDA_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:.+")
_SERVICE_PREFIX = "arn:aws:states:::"
_INVOKE_PARAMETERS = frozenset(
    {"FunctionName", "Payload", "Qualifier", "InvocationType", "ClientContext", "LogType"}
)
_DECODER = json.JSONDecoder()


class StateMachine:
    """An Amazon States Language definition whose Task resources are Python callables.

    ``definition`` (a mapping or JSON text) is validated and compiled here; every Task's
    resource must resolve to one of ``resources``, keyed by Lambda function ARN, function
    name, or the exact resource string. Otherwise DefinitionError names the state and
    field. ``clock`` (aware UTC datetimes) stamps events and drives Wait states and the
    execution's TimeoutSeconds. Waiting (a Wait state, a Retry interval) holds no
    thread: the execution is parked and a timer resumes it on a worker thread when the
    wait is over, as in Step Functions, so one waiting execution never delays another.
    A ``sleeper``, when given, does the waiting instead, in the execution's thread
    (inject it with the clock so that tests never sleep). ``rng`` draws FULL jitter,
    request ids, default execution names, ``States.UUID`` and ``States.MathRandom``
    (inject a seeded one for repeatable runs). ``max_workers`` bounds how many branches
    or iterations of one Parallel or Map state run at once.

    ``task_timeouts`` says how a Task's TimeoutSeconds (and the execution's deadline
    while a handler runs) is enforced: ``"worker"`` (faithful) fails the state at the
    deadline even if the handler never returns, as Step Functions does (an execution
    that may time a handler runs on a worker thread while the calling thread waits);
    ``"inline"`` runs everything in the calling thread and turns a call that returns too
    late into States.Timeout, so a handler that never returns holds the execution. A
    StateMachine is immutable and may run many executions at once from several threads.
    """

    def __init__(
        self,
        definition: Mapping[str, Any] | str,
        resources: Mapping[str, Handler],
        *,
        clock: Callable[[], datetime] | None = None,
        sleeper: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        max_workers: int = 8,
        name: str = "StateMachine",
        region: str = "us-east-1",
        account_id: str = "123456789012",
        role_arn: str | None = None,
        task_timeouts: str = "worker",
    ) -> None:
        if task_timeouts not in ("worker", "inline"):
            raise ValueError(f"task_timeouts must be 'worker' or 'inline', got {task_timeouts!r}")
        _check_arguments(resources, max_workers, name, region, account_id)
        self._definition: Definition = parse_definition(definition)
        self._source = dumps(self._definition.source)
        self._resources = dict(resources)
        self._region = region
        self._resolver = FunctionResolver(self._resources, region, account_id)
        self.name = name
        self.arn = f"arn:aws:states:{region}:{account_id}:stateMachine:{name}"
        self._execution_prefix = f"arn:aws:states:{region}:{account_id}:execution:{name}:"
        self._rng = rng
        self._inline_tasks = task_timeouts == "inline"
        self._timed_tasks = any(
            spec.timeout_seconds is not None or spec.timeout_seconds_path is not None
            for spec in self._definition.machine.walk()
            if isinstance(spec, TaskSpec)
        )
        self._settings = RunSettings(
            clock=clock or utc_now,
            sleeper=sleeper,
            rng=rng,
            max_workers=max_workers,
            state_machine_arn=self.arn,
            state_machine_name=name,
            role_arn=role_arn or f"arn:aws:iam::{account_id}:role/{name}-role",
            tasks=self._task_resources(),
            inline_tasks=self._inline_tasks,
        )

    @property
    def definition(self) -> dict[str, Any]:
        """A copy of the definition as given."""
        copy: dict[str, Any] = json.loads(self._source)
        return copy

    @property
    def warnings(self) -> tuple[str, ...]:
        """What validation found suspicious but allowed (unreachable states)."""
        return self._definition.warnings

    def execute(
        self,
        input: Any,
        *,
        name: str | None = None,
        context: Mapping[str, Any] | None = None,
        timeout_seconds: float | None = None,
    ) -> Execution:
        """Run one execution to its end and return its record.

        ``input`` is any JSON value. ``name`` defaults to a random UUID; names follow
        Step Functions' rules (1 to 80 characters, no whitespace or ``<>{}[]?*"#%\\^|~`$&,;:/``).
        ``context`` is merged into the context object (``$$``) section by section, e.g.
        ``{"Execution": {"RoleArn": ...}}``. ``timeout_seconds`` overrides the
        definition's TimeoutSeconds. A failing execution is a FAILED or TIMED_OUT record,
        not an exception; ExecutionError means the execution could not start (bad input
        or name). Exceptions that are not ``Exception`` (KeyboardInterrupt) propagate.
        """
        run, thread, loop, seconds = self._begin(input, name, context, timeout_seconds)
        # Handler calls can be timed out only on a thread this one does not wait in.
        on_worker = not self._inline_tasks and (self._timed_tasks or run.deadline is not None)
        try:
            output = driver.run(loop, on_worker=on_worker)
        except (StatesFailure, ExecutionTimedOut) as failure:
            return self._end(run, thread, seconds, None, failure)
        return self._end(run, thread, seconds, output, None)

    def start(
        self,
        input: Any,
        *,
        name: str | None = None,
        context: Mapping[str, Any] | None = None,
        timeout_seconds: float | None = None,
        on_this_thread: bool = False,
    ) -> Future[Execution]:
        """Start one execution on a worker thread; the future gets its record at the end.

        The arguments are :meth:`execute`'s, and ExecutionError (bad input or name) is
        raised here. The calling thread goes on at once: a caller that waits on the
        future with a timeout is never held by a handler, whatever the definition says.
        ``on_this_thread``: run the execution on the calling thread until it ends or
        waits (then a worker carries it on after the wait), with no hand-off; meant for
        ``task_timeouts="inline"``, where no handler call is left behind at a deadline.
        """
        future: Future[Execution] = Future()
        future.set_running_or_notify_cancel()

        def settle(execution: Execution | None, error: BaseException | None) -> None:
            if execution is None:
                future.set_exception(error or RuntimeError("the execution ended with no record"))
            else:
                future.set_result(execution)

        self.start_then(
            input,
            settle,
            name=name,
            context=context,
            timeout_seconds=timeout_seconds,
            on_this_thread=on_this_thread,
        )
        return future

    def start_then(
        self,
        input: Any,
        then: Callable[[Execution | None, BaseException | None], None],
        *,
        name: str | None = None,
        context: Mapping[str, Any] | None = None,
        timeout_seconds: float | None = None,
        on_this_thread: bool = False,
    ) -> None:
        """:meth:`start` with a callback instead of a future (no future to build, settle
        and wait on): ``then(execution, None)`` at the end, or ``then(None, error)`` if the
        executor itself broke down, on whichever thread reaches the end (this one, when
        the execution runs here to its end). ``then`` must not raise. ExecutionError (bad
        input or name) is raised here, and ``then`` is never called.
        """
        run, thread, loop, seconds = self._begin(input, name, context, timeout_seconds)

        def finish(output: Any, error: BaseException | None) -> None:
            if error is not None and not isinstance(error, StatesFailure | ExecutionTimedOut):
                then(None, error)
                return
            try:
                execution = self._end(run, thread, seconds, output, error)
            except Exception as exc:  # handed to the waiter, never lost in a worker
                then(None, exc)
                return
            then(execution, None)

        if on_this_thread:
            driver.drive(loop, finish)
        else:
            driver.start(loop, finish)

    def _begin(
        self,
        input: Any,
        name: str | None,
        context: Mapping[str, Any] | None,
        timeout_seconds: float | None,
    ) -> tuple[Run, Thread, driver.Loop, float | None]:
        """Check the name and input, record ExecutionStarted; the loop is not run yet."""
        name = self._new_name() if name is None else name
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ExecutionError(
                f"invalid execution name {name!r}: use 1 to 80 characters without whitespace,"
                ' control characters or any of <>{}[]?*"#%\\^|~`$&,;:/'
            )
        # The run's own copy, as decoding the input's JSON text gives it: plain JSON values
        # are copied, their text written when the history is read (as a Task's result).
        value = plain_copy(input)
        input_json: str | None = None
        if value is NOT_PLAIN:
            try:
                input_json = dumps(input)
            except (TypeError, ValueError) as exc:
                raise ExecutionError(f"execution input must be a JSON value: {exc}") from exc
            value = _DECODER.raw_decode(input_json)[0]
        thread = Thread(0, value, input_json)
        recorded = thread.defer(value)
        run = Run(
            self._settings,
            name=name,
            execution_arn=self._execution_prefix + name,
            input_value=value,
            deadline=None,
            extra_context=context,
            input_json=recorded,
        )
        started = run.history.add(
            thread,
            "ExecutionStarted",
            "executionStartedEventDetails",
            {
                "input": recorded,
                "inputDetails": {"truncated": False},
                "roleArn": self._settings.role_arn,
            },
            advance=False,
        )
        run.start_time = stamp_time(started["timestamp"])
        seconds = self._definition.timeout_seconds if timeout_seconds is None else timeout_seconds
        if seconds is not None:
            run.deadline = run.start_time + timedelta(seconds=seconds)
        return run, thread, run.run_machine(self._definition.machine, value, thread, None), seconds

    def _end(
        self,
        run: Run,
        thread: Thread,
        seconds: float | None,
        output: Any,
        failure: StatesFailure | ExecutionTimedOut | None,
    ) -> Execution:
        """Record how the execution ended and return its record."""
        status, result, error, cause = self._outcome(run, thread, seconds, output, failure)
        history = run.history.close()
        assert run.start_time is not None  # set by _begin
        return Execution(
            name=run.name,
            execution_arn=run.execution_arn,
            state_machine_arn=self.arn,
            status=status,
            # The caller's own copy: the run's may sit in the history, to be written later.
            input=fresh_copy(run.input_value, run.input_json),
            output=result,
            error=error,
            cause=cause,
            start_date=run.start_time,
            stop_date=stamp_time(history.unwritten()[-1]["timestamp"]),
            history=history,
        )

    def _outcome(
        self,
        run: Run,
        thread: Thread,
        seconds: float | None,
        output: Any,
        failure: StatesFailure | ExecutionTimedOut | None,
    ) -> tuple[str, Any, str | None, str | None]:
        history = run.history
        if isinstance(failure, StatesFailure):
            details = {"error": failure.error, "cause": failure.cause}
            details = {key: text for key, text in details.items() if text is not None}
            history.add(thread, "ExecutionFailed", "executionFailedEventDetails", details)
            return "FAILED", None, failure.error, failure.cause
        if isinstance(failure, ExecutionTimedOut):
            cause = f"The execution ran longer than its TimeoutSeconds ({seconds:g} s)."
            history.add(
                thread,
                "ExecutionTimedOut",
                "executionTimedOutEventDetails",
                {"error": TIMEOUT, "cause": cause},
            )
            return "TIMED_OUT", None, TIMEOUT, cause
        # Written as text when the history is read, like the states' outputs; the
        # caller's copy is what decoding that text gives.
        recorded = thread.defer(output)
        history.add(
            thread,
            "ExecutionSucceeded",
            "executionSucceededEventDetails",
            {"output": recorded, "outputDetails": {"truncated": False}},
        )
        return "SUCCEEDED", recorded.fresh(), None, None

    def _new_name(self) -> str:
        return random_uuid(self._rng)

    # --- resolving Task resources --------------------------------------------------------

    def _task_resources(self) -> dict[str, TaskResource]:
        return {
            spec.name: self._resource_for(spec)
            for spec in self._definition.machine.walk()
            if isinstance(spec, TaskSpec)
        }

    def _resource_for(self, spec: TaskSpec) -> TaskResource:
        resource = spec.resource
        if resource == LAMBDA_INVOKE:
            self._check_invoke(spec)
            return LambdaInvokeTask(self._resolver, self._region)
        if resource.startswith(LAMBDA_INVOKE + "."):
            raise DefinitionError(
                f"{resource!r} is not supported by the local executor; use {LAMBDA_INVOKE!r}",
                state=spec.name,
                field="Resource",
            )
        if resource.startswith(_SERVICE_PREFIX) and resource in self._resources:
            return ServiceTask(resource, self._resources[resource], self._region)
        if resource in self._resources or _LAMBDA_ARN.fullmatch(resource):
            function = self._resolver.resolve(resource)
            if function is not None:
                return LambdaFunctionTask(resource, function)
        raise DefinitionError(_no_handler(resource), state=spec.name, field="Resource")

    def _check_invoke(self, spec: TaskSpec) -> None:
        params = spec.parameters_source
        if not isinstance(params, Mapping):
            raise DefinitionError(
                f"{LAMBDA_INVOKE} needs Parameters with FunctionName (and usually Payload)",
                state=spec.name,
                field="Parameters",
            )
        given = {key.removesuffix(".$") for key in params}
        unknown = sorted(given - _INVOKE_PARAMETERS)
        if unknown:
            raise DefinitionError(
                f"unsupported lambda:invoke parameter(s) {unknown}; "
                f"supported: {sorted(_INVOKE_PARAMETERS)}",
                state=spec.name,
                field=f"Parameters.{unknown[0]}",
            )
        if "FunctionName" not in given:
            raise DefinitionError(
                "lambda:invoke needs FunctionName (a name or ARN) in Parameters",
                state=spec.name,
                field="Parameters.FunctionName",
            )
        invocation = params.get("InvocationType", "RequestResponse")
        if invocation != "RequestResponse":
            raise DefinitionError(
                f"InvocationType {invocation!r} is not supported by the local executor; "
                "only RequestResponse is",
                state=spec.name,
                field="Parameters.InvocationType",
            )
        function_name = params.get("FunctionName")
        if isinstance(function_name, str) and self._resolver.resolve(invoked_name(params)) is None:
            raise DefinitionError(
                _no_handler(function_name), state=spec.name, field="Parameters.FunctionName"
            )


def _no_handler(resource: str) -> str:
    if "${" in resource:
        return (
            f"{resource!r} still holds a ${{...}} placeholder: substitute it before building "
            "the StateMachine (or key resources by the placeholder text)"
        )
    reference = parse_function_reference(resource.rsplit("function:", 1)[-1])
    by_name = f" or by its name {reference.name!r}" if reference else ""
    return f"no handler for {resource!r}: add it to resources, keyed by this string{by_name}"


def _check_arguments(
    resources: Mapping[str, Handler], max_workers: int, name: str, region: str, account: str
) -> None:
    if not isinstance(resources, Mapping):
        raise TypeError(f"resources must map resource names to callables, got {resources!r}")
    for key, handler in resources.items():
        if not isinstance(key, str) or not callable(handler):
            raise TypeError(f"resources[{key!r}] must be a callable (event, context) handler")
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}")
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid state machine name {name!r}: 1 to 80 characters, no spaces")
    if not _REGION.fullmatch(region):
        raise ValueError(f"invalid region {region!r}, expected something like 'us-east-1'")
    if not _ACCOUNT.fullmatch(account):
        raise ValueError(f"invalid account id {account!r}: 12 digits")
