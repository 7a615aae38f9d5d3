"""Task resources backed by Python callables, invoked like Lambda and recorded like it.

Three forms of ``Resource`` are understood:

- a Lambda function ARN (``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``): the
  result is the handler's return value; events ``LambdaFunctionScheduled/Started/
  Succeeded/Failed/TimedOut``;
- ``arn:aws:states:::lambda:invoke`` with ``Parameters.FunctionName`` and ``Payload``: the
  result is wrapped like the real integration's (``ExecutedVersion``, ``Payload``,
  ``SdkHttpMetadata``, ``SdkResponseMetadata``, ``StatusCode``); events ``Task...``;
- any other resource string given verbatim in ``resources`` (``arn:aws:states:::sqs:
  sendMessage``, ...): the handler stands in for the service; events ``Task...``.

A handler gets a fresh copy of its input (decoded from the JSON the history shows) and
its result is encoded to JSON and decoded again, so neither side can change the other's
data, exactly as across the Lambda boundary. An exception becomes a task failure named
by its class, with a Lambda-style JSON cause (errorMessage, errorType, requestId,
stackTrace).
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from strangler.instant.asl.driver import Call, Loop
from strangler.instant.asl.errors import TIMEOUT, ExecutionTimedOut, StatesFailure
from strangler.instant.asl.history import NOT_PLAIN, Deferred, History, Thread, dumps, plain_copy
from strangler.instant.asl.lambda_context import LambdaContext

__all__ = [
    "LAMBDA_INVOKE",
    "Attempt",
    "FunctionResolver",
    "Handler",
    "LambdaFunctionTask",
    "LambdaInvokeTask",
    "ResolvedFunction",
    "ServiceTask",
    "TaskResource",
    "fresh_copy",
    "invoked_name",
    "parse_function_reference",
]

Handler = Callable[[Any, LambdaContext], Any]

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
_LAMBDA_MAX_SECONDS = 900.0
_MAX_STACK_FRAMES = 20
_MAX_KNOWN_NAMES = 256  # resolved lambda:invoke FunctionNames kept per Task state
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_DECODER = json.JSONDecoder()
_FUNCTION = re.compile(
    r"(?:arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):)?"
    r"(?:(?P<account>\d{12}):function:)?"
    r"(?P<name>[A-Za-z0-9_-]{1,140})(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)


@dataclass(slots=True)  # not frozen: built for every attempt, and frozen costs µs
class Attempt:
    """What one attempt of a Task needs from the executor (treat as read-only)."""

    history: History
    thread: Thread
    timeout: int | None  # the Task's TimeoutSeconds
    remaining: float | None  # seconds left of the execution's TimeoutSeconds
    request_id: str
    now: Callable[[], datetime]
    inline: bool = False  # run the handler in the calling thread even with a timeout


@dataclass(frozen=True, slots=True)
class ResolvedFunction:
    """A handler and the Lambda names it answers to."""

    handler: Handler
    name: str
    arn: str
    version: str


@dataclass(frozen=True, slots=True)
class FunctionReference:
    """The parts of a function name, partial ARN or ARN."""

    name: str
    qualifier: str | None
    region: str | None
    account: str | None
    partition: str | None


def parse_function_reference(text: str) -> FunctionReference | None:
    """Split ``NAME[:Q]``, ``ACCOUNT:function:NAME[:Q]`` or a function ARN; None if neither."""
    match = _FUNCTION.fullmatch(text)
    if match is None or (match["region"] and not match["account"]):
        return None
    return FunctionReference(
        match["name"], match["qualifier"], match["region"], match["account"], match["partition"]
    )


class FunctionResolver:
    """Finds the handler for a function reference: the exact string first, then its ARN,
    then the bare function name (qualifier stripped)."""

    def __init__(self, resources: Mapping[str, Handler], region: str, account: str) -> None:
        self._region = region
        self._account = account
        self._exact = dict(resources)
        by_name: dict[str, Handler | None] = {}
        for key, handler in resources.items():
            reference = parse_function_reference(key)
            if reference is None:
                continue
            known = by_name.get(reference.name, handler)
            by_name[reference.name] = handler if known is handler else None  # None: ambiguous
        self._by_name = by_name

    def arn(self, reference: FunctionReference) -> str:
        """The full ARN a reference denotes, qualified if it is."""
        arn = (
            f"arn:{reference.partition or 'aws'}:lambda:{reference.region or self._region}:"
            f"{reference.account or self._account}:function:{reference.name}"
        )
        return f"{arn}:{reference.qualifier}" if reference.qualifier else arn

    def resolve(self, text: str) -> ResolvedFunction | None:
        """The handler ``text`` names, or None."""
        reference = parse_function_reference(text)
        handler = self._exact.get(text)
        if reference is None:
            if handler is None:
                return None
            return ResolvedFunction(handler, text, text, "$LATEST")
        arn = self.arn(reference)
        if handler is None:
            unqualified = self.arn(
                FunctionReference(reference.name, None, reference.region, reference.account, None)
            )
            handler = (
                self._exact.get(arn)
                or self._exact.get(unqualified)
                or self._by_name.get(reference.name)
            )
        if handler is None:
            return None
        qualifier = reference.qualifier
        version = qualifier if qualifier and qualifier.isdigit() else "$LATEST"
        return ResolvedFunction(handler, reference.name, arn, version)


def invoked_name(params: Mapping[str, Any]) -> str:
    """FunctionName of lambda:invoke Parameters, with ``Qualifier`` appended when given."""
    name = str(params["FunctionName"])
    qualifier = params.get("Qualifier")
    reference = parse_function_reference(name)
    if isinstance(qualifier, str) and reference is not None and reference.qualifier is None:
        return f"{name}:{qualifier}"
    return name


class _HandlerFailed(Exception):
    def __init__(self, error: str, cause: str) -> None:
        self.error = error
        self.cause = cause
        super().__init__(error)


class TaskResource:
    """How one Task state's resource is invoked and recorded (see the subclasses)."""

    compact_causes = False

    def invoke(self, params: Any, attempt: Attempt) -> Loop:
        """Run one attempt (a loop for the driver); returns the task result or raises
        StatesFailure.

        Raises ExecutionTimedOut when the execution's own deadline passes first.
        """
        history, thread = attempt.history, attempt.thread
        # Written as text when the history is read, or when the event needs it.
        params_json = thread.defer(params)
        history.add(thread, *self.scheduled(params_json, attempt.timeout))
        history.add(thread, *self.started())
        try:
            function = self.target(params)
            event = self.event(params, params_json)
            call, result = _call(function, event, attempt)
            if call is not None:
                result = yield call
            output_json, value = self.output(function, result, attempt)
        except _HandlerFailed as failed:
            history.add(thread, *self.failed(failed.error, failed.cause))
            raise StatesFailure(failed.error, failed.cause) from None
        except _TaskTimedOut:
            history.add(thread, *self.timed_out())
            raise StatesFailure(TIMEOUT, None) from None
        except ExecutionTimedOut:
            raise
        except Exception as exc:
            error, cause = _lambda_error(exc, attempt.request_id, self.compact_causes)
            _drop_tracebacks(exc)
            history.add(thread, *self.failed(error, cause))
            raise StatesFailure(error, cause) from None
        history.add(thread, *self.succeeded(output_json))
        return value

    def target(self, params: Any) -> ResolvedFunction:
        raise NotImplementedError

    def event(self, params: Any, params_json: Deferred) -> Any:
        """The handler's event: a fresh copy of ``params``, as decoded from its JSON."""
        return fresh_copy(params, params_json)

    def output(
        self, _function: ResolvedFunction, result: Any, attempt: Attempt
    ) -> tuple[str | Deferred, Any]:
        """The ``...Succeeded`` event's output and the task result: the handler's result
        as its JSON text decoded gives it, unshared. A result of plain JSON values is
        copied, its text written when the history is read; anything else is encoded and
        decoded. Raises _HandlerFailed (Runtime.MarshalError) when JSON cannot hold it.
        """
        value = plain_copy(result)
        if value is not NOT_PLAIN:
            return Deferred(value), value
        result_json = self.marshal(result, attempt)
        return result_json, _DECODER.raw_decode(result_json)[0]

    def marshal(self, result: Any, attempt: Attempt) -> str:
        """The handler's result as JSON text; raises _HandlerFailed when it cannot be."""
        try:
            return dumps(result)
        except (TypeError, ValueError) as exc:
            error, cause = _marshal_error(exc, attempt.request_id, self.compact_causes)
            raise _HandlerFailed(error, cause) from None

    def scheduled(self, params_json: Deferred, timeout: int | None) -> _Event:
        raise NotImplementedError

    def started(self) -> _Event:
        raise NotImplementedError

    def succeeded(self, output_json: str | Deferred) -> _Event:
        raise NotImplementedError

    def failed(self, error: str, cause: str) -> _Event:
        raise NotImplementedError

    def timed_out(self) -> _Event:
        raise NotImplementedError


_Event = tuple[str, str | None, dict[str, Any] | None]


class LambdaFunctionTask(TaskResource):
    """``Resource`` is a function ARN; the result is the handler's return value."""

    def __init__(self, resource: str, function: ResolvedFunction) -> None:
        self.resource = resource
        self.function = function

    def target(self, _params: Any) -> ResolvedFunction:
        return self.function

    def scheduled(self, params_json: Deferred, timeout: int | None) -> _Event:
        details: dict[str, Any] = {
            "resource": self.resource,
            "input": params_json,
            "inputDetails": {"truncated": False},
        }
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        return "LambdaFunctionScheduled", "lambdaFunctionScheduledEventDetails", details

    def started(self) -> _Event:
        return "LambdaFunctionStarted", None, None

    def succeeded(self, output_json: str | Deferred) -> _Event:
        details = {"output": output_json, "outputDetails": {"truncated": False}}
        return "LambdaFunctionSucceeded", "lambdaFunctionSucceededEventDetails", details

    def failed(self, error: str, cause: str) -> _Event:
        details = {"error": error, "cause": cause}
        return "LambdaFunctionFailed", "lambdaFunctionFailedEventDetails", details

    def timed_out(self) -> _Event:
        details = {"error": TIMEOUT}
        return "LambdaFunctionTimedOut", "lambdaFunctionTimedOutEventDetails", details


class _ServiceEvents(TaskResource):
    """``Task...`` events, as service integrations record them."""

    def __init__(self, resource_type: str, resource: str, region: str) -> None:
        self.resource_type = resource_type
        self.resource_name = resource
        self.region = region

    def _names(self) -> dict[str, Any]:
        return {"resourceType": self.resource_type, "resource": self.resource_name}

    def scheduled(self, params_json: Deferred, timeout: int | None) -> _Event:
        details = {**self._names(), "region": self.region, "parameters": params_json}
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        return "TaskScheduled", "taskScheduledEventDetails", details

    def started(self) -> _Event:
        return "TaskStarted", "taskStartedEventDetails", self._names()

    def succeeded(self, output_json: str | Deferred) -> _Event:
        details = {**self._names(), "output": output_json, "outputDetails": {"truncated": False}}
        return "TaskSucceeded", "taskSucceededEventDetails", details

    def failed(self, error: str, cause: str) -> _Event:
        details = {**self._names(), "error": error, "cause": cause}
        return "TaskFailed", "taskFailedEventDetails", details

    def timed_out(self) -> _Event:
        return "TaskTimedOut", "taskTimedOutEventDetails", {**self._names(), "error": TIMEOUT}


class LambdaInvokeTask(_ServiceEvents):
    """``arn:aws:states:::lambda:invoke``: FunctionName picks the handler, Payload is its event."""

    compact_causes = True

    def __init__(self, resolver: FunctionResolver, region: str) -> None:
        super().__init__("lambda", "invoke", region)
        self.resolver = resolver
        self._known: dict[str, ResolvedFunction] = {}  # FunctionName (no Qualifier) -> ...

    def target(self, params: Any) -> ResolvedFunction:
        name = params.get("FunctionName") if isinstance(params, dict) else None
        if not isinstance(name, str):
            raise _not_found(self.resolver, name)
        plain = "Qualifier" not in params
        function = self._known.get(name) if plain else None
        if function is None:
            function = self.resolver.resolve(invoked_name(params))
            if function is None:
                raise _not_found(self.resolver, name)
            if plain and len(self._known) < _MAX_KNOWN_NAMES:
                self._known[name] = function
        return function

    def event(self, _params: Any, params_json: Deferred) -> Any:
        decoded = _DECODER.raw_decode(params_json.text)[0]
        return decoded.get("Payload", {})

    def output(
        self, function: ResolvedFunction, result: Any, attempt: Attempt
    ) -> tuple[str | Deferred, Any]:
        return _invoke_response(function, self.marshal(result, attempt), attempt)


class ServiceTask(_ServiceEvents):
    """Any other resource mapped verbatim; the handler stands in for the service."""

    def __init__(self, resource: str, handler: Handler, region: str) -> None:
        resource_type, _, action = resource.removeprefix("arn:aws:states:::").partition(":")
        super().__init__(resource_type, action or resource, region)
        self.function = ResolvedFunction(handler, resource_type, resource, "$LATEST")

    def target(self, _params: Any) -> ResolvedFunction:
        return self.function


_FLAT = frozenset({str, int, bool, type(None)})  # values JSON gives back as they were


def fresh_copy(value: Any, value_json: str | Deferred) -> Any:
    """``value`` as decoding ``value_json`` (its JSON text) gives it, unshared.

    An object of strings, integers, booleans and nulls under string keys (a Task's usual
    Parameters) is copied as it is: decoding gives an equal object, at several times the
    cost (and a Deferred text is then never written for it). Anything else is decoded.
    """
    if type(value) is dict:
        for key, item in value.items():  # a loop: half the cost of all() over a generator
            if type(key) is not str or type(item) not in _FLAT:
                break
        else:
            return dict(value)
    text = value_json if isinstance(value_json, str) else value_json.text
    return _DECODER.raw_decode(text)[0]


class _TaskTimedOut(Exception):
    pass


def _call(function: ResolvedFunction, event: Any, attempt: Attempt) -> tuple[Call | None, Any]:
    """Call the handler in place and return ``(None, result)`` unless a deadline must be
    enforced while it runs; then return ``(call, None)``: the Call for the driver."""
    started = time.monotonic()
    budget = float(attempt.timeout) if attempt.timeout is not None else _LAMBDA_MAX_SECONDS
    context = LambdaContext(
        function_name=function.name,
        function_version=function.version,
        invoked_function_arn=function.arn,
        aws_request_id=attempt.request_id,
        log_group_name=f"/aws/lambda/{function.name}",
        deadline=started + budget,
    )
    handler = function.handler
    if attempt.timeout is None and attempt.remaining is None:
        return None, handler(event, context)
    if attempt.inline:
        return None, _call_inline(handler, event, context, attempt, started)
    limit, task_first = _limit(attempt)
    assert limit is not None  # a timeout or a deadline is set
    expired = _TaskTimedOut if task_first else ExecutionTimedOut
    return Call(handler, (event, context), started + limit, expired), None


def _limit(attempt: Attempt) -> tuple[float | None, bool]:
    """The sooner of the Task's timeout and the execution's deadline, and whether it is
    the Task's."""
    task_first = attempt.remaining is None or (
        attempt.timeout is not None and attempt.timeout <= attempt.remaining
    )
    return (attempt.timeout if task_first else attempt.remaining), task_first


def _call_inline(
    handler: Handler, event: Any, context: LambdaContext, attempt: Attempt, started: float
) -> Any:
    """Call in this thread (``started``: the call's start, by time.monotonic); a call that
    overran its limit counts as timed out on return."""
    result = handler(event, context)
    limit, task_first = _limit(attempt)
    if limit is not None and time.monotonic() - started > limit:
        if task_first:
            raise _TaskTimedOut
        raise ExecutionTimedOut
    return result


def _lambda_error(exc: BaseException, request_id: str, compact: bool) -> tuple[str, str]:
    """Lambda's error name (the exception's class) and its JSON cause."""
    error = type(exc).__name__
    # The frames are chosen before any source line is read: only the kept ones are read.
    frames = [
        (frame, line)
        for frame, line in traceback.walk_tb(exc.__traceback__)
        if not os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR)
    ]
    kept = traceback.StackSummary.extract(iter(frames[-_MAX_STACK_FRAMES:]))
    cause = {
        "errorMessage": str(exc),
        "errorType": error,
        "requestId": request_id,
        "stackTrace": kept.format(),
    }
    return error, dumps(cause) if compact else json.dumps(cause, ensure_ascii=False)


def _drop_tracebacks(exc: BaseException) -> None:
    """Cut a handler's exception, and those it was raised from, off their tracebacks.

    Once the cause is written, the traceback is not needed; kept, it is a reference
    cycle (this frame holds ``exc`` and its traceback holds this frame; an exception
    raised in an ``except`` block likewise holds, through its traceback's frame, the one
    it caught), so a failed attempt left its frames, their locals and the legacy call's
    response to the cyclic garbage collector, whose full collections stop every thread
    of the routing process (see :mod:`strangler.routing.heap`). Without their
    tracebacks, reference counting frees them as soon as the attempt is recorded.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        todo += [current.__cause__, current.__context__]


def _marshal_error(exc: Exception, request_id: str, compact: bool) -> tuple[str, str]:
    error = "Runtime.MarshalError"
    cause = {
        "errorMessage": f"Unable to marshal response: {exc}",
        "errorType": error,
        "requestId": request_id,
        "stackTrace": [],
    }
    return error, dumps(cause) if compact else json.dumps(cause, ensure_ascii=False)


def _not_found(resolver: FunctionResolver, name: Any) -> _HandlerFailed:
    reference = parse_function_reference(name) if isinstance(name, str) else None
    shown = resolver.arn(reference) if reference else repr(name)
    if reference is not None and reference.qualifier is None:
        shown += ":$LATEST"
    return _HandlerFailed(
        "Lambda.ResourceNotFoundException",
        f"Function not found: {shown} (Service: AWSLambda; Status Code: 404; Error Code: "
        "ResourceNotFoundException; Proxy: null)",
    )


# The integration's response around the Payload. Every value put in is JSON-safe as is
# (a version or qualifier, digits, an HTTP date, a UUID), so one %-format builds the text.
_RESPONSE_JSON = (
    '{"ExecutedVersion":"%(version)s","Payload":%(payload)s,"SdkHttpMetadata":{'
    '"AllHttpHeaders":{"Connection":["keep-alive"],"Content-Length":["%(length)d"],'
    '"Content-Type":["application/json"],"Date":["%(date)s"],'
    '"X-Amz-Executed-Version":["%(version)s"],"x-amzn-Remapped-Content-Length":["0"],'
    '"x-amzn-RequestId":["%(request)s"],"X-Amzn-Trace-Id":["%(trace)s"]},'
    '"HttpHeaders":{"Connection":"keep-alive","Content-Length":"%(length)d",'
    '"Content-Type":"application/json","Date":"%(date)s",'
    '"X-Amz-Executed-Version":"%(version)s","x-amzn-Remapped-Content-Length":"0",'
    '"x-amzn-RequestId":"%(request)s","X-Amzn-Trace-Id":"%(trace)s"},'
    '"HttpStatusCode":200},"SdkResponseMetadata":{"RequestId":"%(request)s"},"StatusCode":200}'
)


def _invoke_response(
    function: ResolvedFunction, payload_json: str, attempt: Attempt
) -> tuple[str, Any]:
    """The lambda:invoke result as JSON text and as a value (with a fresh Payload)."""
    request_id = attempt.request_id
    fields = {
        "version": function.version,
        "payload": payload_json,
        "length": len(payload_json.encode()),
        "date": _http_date(attempt.now()),
        "request": request_id,
        "trace": f"Root=1-{request_id[:8]}-{request_id[-12:]};Sampled=0",
    }
    headers = {
        "Connection": "keep-alive",
        "Content-Length": str(fields["length"]),
        "Content-Type": "application/json",
        "Date": fields["date"],
        "X-Amz-Executed-Version": function.version,
        "x-amzn-Remapped-Content-Length": "0",
        "x-amzn-RequestId": request_id,
        "X-Amzn-Trace-Id": fields["trace"],
    }
    value = {
        "ExecutedVersion": function.version,
        "Payload": _DECODER.raw_decode(payload_json)[0],
        "SdkHttpMetadata": {
            "AllHttpHeaders": {key: [header] for key, header in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    }
    return _RESPONSE_JSON % fields, value


@functools.lru_cache(maxsize=4)
def _http_date_of_second(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC), usegmt=True)


def _http_date(moment: datetime) -> str:
    return _http_date_of_second(int(moment.timestamp()))
