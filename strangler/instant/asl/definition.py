"""Validate an ASL definition and compile it into immutable state specs, before any run.

Everything a run needs is checked and compiled here once: field names and types per
state type, transitions (``Next``, ``Default``, ``Catch[].Next``) naming states of the
same (sub-)machine, terminal states, Choice rules, paths, payload templates, intrinsic
functions, Retry and Catch (``States.ALL`` alone and last). Errors name the state and
the field. Task resources are resolved later, by the StateMachine that knows the
handlers. Unreachable states are allowed (Step Functions allows them too) and reported
in :attr:`Definition.warnings`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from strangler.instant.asl.choice import ChoiceRule, compile_choice_rule
from strangler.instant.asl.errors import ALL, KNOWN_STATES_ERRORS, Retrier
from strangler.instant.asl.intrinsics import Intrinsic, IntrinsicSyntaxError, compile_intrinsic
from strangler.instant.asl.paths import JsonPath, PathSyntaxError, compile_path
from strangler.instant.asl.templates import Template, compile_template
from strangler.instant.asl.timestamps import parse_timestamp
from strangler.instant.exceptions import DefinitionError

__all__ = [
    "ENTERED_EVENT",
    "EXITED_EVENT",
    "Catcher",
    "ChoiceSpec",
    "Definition",
    "FailSpec",
    "MachineSpec",
    "MapSpec",
    "ParallelSpec",
    "PassSpec",
    "StateSpec",
    "SucceedSpec",
    "TaskSpec",
    "WaitSpec",
    "parse_definition",
]

MAX_SECONDS = 99_999_999
MAX_NAME_LENGTH = 80
_ROOT = compile_path("$")


@dataclass(frozen=True, slots=True)
class Catcher:
    """One element of a Catch array; ``result_path`` None means ``"ResultPath": null``."""

    error_equals: tuple[str, ...]
    next: str
    result_path: JsonPath | None


@dataclass(frozen=True, slots=True)
class StateSpec:
    """Fields every state type shares. ``None`` paths mean the field was ``null``."""

    name: str
    type: str
    next: str | None = None
    input_path: JsonPath | None = _ROOT
    output_path: JsonPath | None = _ROOT

    @property
    def entered_event(self) -> str:
        """The history event type for entering this state (``TaskStateEntered``, ...)."""
        return ENTERED_EVENT[self.type]

    @property
    def exited_event(self) -> str:
        """The history event type for leaving this state (``TaskStateExited``, ...)."""
        return EXITED_EVENT[self.type]


class _EventTypes(dict[str, str]):
    """State type -> its event type (``"Task"`` -> ``"TaskStateEntered"``): one string
    per state type, made on first use; asked twice per state run, a dict lookup."""

    def __init__(self, suffix: str) -> None:
        super().__init__()
        self._suffix = suffix

    def __missing__(self, state_type: str) -> str:
        self[state_type] = event = state_type + self._suffix
        return event


ENTERED_EVENT: dict[str, str] = _EventTypes("StateEntered")
EXITED_EVENT: dict[str, str] = _EventTypes("StateExited")


@dataclass(frozen=True, slots=True)
class PassSpec(StateSpec):
    """A Pass state; ``result`` applies when ``has_result``."""

    parameters: Template | None = None
    has_result: bool = False
    result: Any = None
    result_path: JsonPath | None = _ROOT


@dataclass(frozen=True, slots=True)
class TaskSpec(StateSpec):
    """A Task state; its resource is resolved by the StateMachine."""

    resource: str = ""
    parameters: Template | None = None
    parameters_source: Any = None
    result_selector: Template | None = None
    result_path: JsonPath | None = _ROOT
    timeout_seconds: int | None = None
    timeout_seconds_path: JsonPath | None = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()


@dataclass(frozen=True, slots=True)
class ChoiceSpec(StateSpec):
    """A Choice state: the first matching rule wins, else ``default``."""

    choices: tuple[ChoiceRule, ...] = ()
    default: str | None = None


@dataclass(frozen=True, slots=True)
class WaitSpec(StateSpec):
    """A Wait state; exactly one of the four ways to say how long is set."""

    seconds: int | None = None
    seconds_path: JsonPath | None = None
    timestamp: datetime | None = None
    timestamp_path: JsonPath | None = None


@dataclass(frozen=True, slots=True)
class SucceedSpec(StateSpec):
    """A Succeed state."""


@dataclass(frozen=True, slots=True)
class FailSpec(StateSpec):
    """A Fail state; the ``..._path`` forms are paths or intrinsic functions."""

    error: str | None = None
    cause: str | None = None
    error_path: JsonPath | Intrinsic | None = None
    cause_path: JsonPath | Intrinsic | None = None


@dataclass(frozen=True, slots=True)
class ParallelSpec(StateSpec):
    """A Parallel state: every branch gets the same input; results in branch order."""

    branches: tuple[MachineSpec, ...] = ()
    parameters: Template | None = None
    result_selector: Template | None = None
    result_path: JsonPath | None = _ROOT
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()


@dataclass(frozen=True, slots=True)
class MapSpec(StateSpec):
    """An inline Map state; ``max_concurrency`` 0 means no limit but the executor's own."""

    processor: MachineSpec | None = None
    items_path: JsonPath = _ROOT
    item_selector: Template | None = None
    max_concurrency: int = 0
    max_concurrency_path: JsonPath | None = None
    result_selector: Template | None = None
    result_path: JsonPath | None = _ROOT
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()


@dataclass(frozen=True, slots=True)
class MachineSpec:
    """A state machine, or the branch or item processor of a Parallel or Map state."""

    start_at: str
    states: Mapping[str, StateSpec]

    def walk(self) -> Iterator[StateSpec]:
        """Every state, including those of nested branches and item processors."""
        for spec in self.states.values():
            yield spec
            if isinstance(spec, ParallelSpec):
                for branch in spec.branches:
                    yield from branch.walk()
            elif isinstance(spec, MapSpec) and spec.processor is not None:
                yield from spec.processor.walk()


@dataclass(frozen=True, slots=True)
class Definition:
    """A validated definition: the top machine, its timeout and anything worth a warning."""

    machine: MachineSpec
    timeout_seconds: int | None
    comment: str | None
    source: Mapping[str, Any]
    warnings: tuple[str, ...] = field(default=())


def parse_definition(definition: Mapping[str, Any] | str) -> Definition:
    """Validate and compile a definition (a mapping or JSON text).

    Raises DefinitionError naming the state and field at the first problem found.
    """
    source = _load(definition)
    _only(source, {"StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"})
    _query_language(source, None)
    if "Version" in source and source["Version"] != "1.0":
        raise DefinitionError("only Version '1.0' exists", field="Version")
    timeout = source.get("TimeoutSeconds")
    if timeout is not None:
        timeout = _seconds(timeout, None, "TimeoutSeconds", minimum=1)
    comment = source.get("Comment")
    if comment is not None and not isinstance(comment, str):
        raise DefinitionError("Comment must be a string", field="Comment")
    builder = _Builder()
    machine = builder.machine(source, owner=None, where="")
    return Definition(machine, timeout, comment, source, tuple(builder.warnings))


def _load(definition: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(definition, str):
        try:
            loaded = json.loads(definition)
        except ValueError as exc:
            raise DefinitionError(f"the definition is not valid JSON: {exc}") from None
    else:
        loaded = definition
    if not isinstance(loaded, Mapping):
        raise DefinitionError(f"a definition is a JSON object, got {type(loaded).__name__}")
    try:
        json.dumps(loaded)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(f"the definition must hold JSON values only: {exc}") from None
    return loaded


def _only(
    fields: Mapping[str, Any], allowed: Iterable[str], state: str | None = None, where: str = ""
) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise DefinitionError(
            f"unknown or unsupported field(s) {unknown}; allowed here: {sorted(allowed)}",
            state=state,
            field=f"{where}{unknown[0]}",
        )


def _query_language(fields: Mapping[str, Any], state: str | None) -> None:
    language = fields.get("QueryLanguage", "JSONPath")
    if language != "JSONPath":
        raise DefinitionError(
            f"QueryLanguage {language!r} is not supported by the local executor; use JSONPath",
            state=state,
            field="QueryLanguage",
        )


def _seconds(value: Any, state: str | None, where: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_SECONDS:
        raise DefinitionError(
            f"must be an integer from {minimum} to {MAX_SECONDS}, got {value!r}",
            state=state,
            field=where,
        )
    return value


_COMMON = ("Type", "Comment", "QueryLanguage")
_FLOW = ("Next", "End")
_IO = ("InputPath", "OutputPath")
_ALLOWED: dict[str, tuple[str, ...]] = {
    "Pass": (*_COMMON, *_FLOW, *_IO, "ResultPath", "Parameters", "Result"),
    "Task": (
        *_COMMON,
        *_FLOW,
        *_IO,
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Resource",
        "TimeoutSeconds",
        "TimeoutSecondsPath",
        "HeartbeatSeconds",
        "HeartbeatSecondsPath",
        "Retry",
        "Catch",
        "Credentials",
    ),
    "Choice": (*_COMMON, *_IO, "Choices", "Default"),
    "Wait": (*_COMMON, *_FLOW, *_IO, "Seconds", "SecondsPath", "Timestamp", "TimestampPath"),
    "Succeed": (*_COMMON, *_IO),
    "Fail": (*_COMMON, "Error", "Cause", "ErrorPath", "CausePath"),
    "Parallel": (
        *_COMMON,
        *_FLOW,
        *_IO,
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Branches",
        "Retry",
        "Catch",
    ),
    "Map": (
        *_COMMON,
        *_FLOW,
        *_IO,
        "ResultPath",
        "Parameters",
        "ItemSelector",
        "ResultSelector",
        "ItemsPath",
        "ItemProcessor",
        "Iterator",
        "MaxConcurrency",
        "MaxConcurrencyPath",
        "Retry",
        "Catch",
    ),
}
_UNSUPPORTED_MAP = (
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "Label",
)
_TERMINAL_TYPES = ("Succeed", "Fail")


class _Builder:
    """Builds MachineSpecs, checking names are unique across the whole definition."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.warnings: list[str] = []

    def machine(self, fields: Mapping[str, Any], owner: str | None, where: str) -> MachineSpec:
        start_at = fields.get("StartAt")
        states = fields.get("States")
        if not isinstance(start_at, str):
            raise DefinitionError(
                "StartAt must name the first state", state=owner, field=f"{where}StartAt"
            )
        if not isinstance(states, Mapping) or not states:
            raise DefinitionError(
                "States must be a non-empty object of state name -> state",
                state=owner,
                field=f"{where}States",
            )
        if start_at not in states:
            raise DefinitionError(
                f"StartAt names {start_at!r}, which is not one of {sorted(states)}",
                state=owner,
                field=f"{where}StartAt",
            )
        specs: dict[str, StateSpec] = {}
        for name, state in states.items():
            self._name(name, owner, where)
            specs[name] = self._state(name, state)
        machine = MachineSpec(start_at, MappingProxyType(specs))
        self._check_transitions(machine, states, owner, where)
        return machine

    def _name(self, name: Any, owner: str | None, where: str) -> None:
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise DefinitionError(
                f"state names are strings of 1 to {MAX_NAME_LENGTH} characters, got {name!r}",
                state=owner,
                field=f"{where}States",
            )
        if name in self.names:
            raise DefinitionError(
                "state names must be unique across the whole definition, including branches "
                "and item processors; rename one of them",
                state=name,
            )
        self.names.add(name)

    def _state(self, name: str, state: Any) -> StateSpec:
        if not isinstance(state, Mapping):
            raise DefinitionError("a state must be an object", state=name)
        kind = state.get("Type")
        if kind not in _ALLOWED:
            raise DefinitionError(
                f"Type must be one of {sorted(_ALLOWED)}, got {kind!r}", state=name, field="Type"
            )
        if kind == "Map":
            for key in _UNSUPPORTED_MAP:
                if key in state:
                    raise DefinitionError(
                        f"{key} (distributed Map features) is not supported by the local executor",
                        state=name,
                        field=key,
                    )
        _only(state, _ALLOWED[kind], name)
        _query_language(state, name)
        comment = state.get("Comment")
        if comment is not None and not isinstance(comment, str):
            raise DefinitionError("Comment must be a string", state=name, field="Comment")
        common: dict[str, Any] = {
            "name": name,
            "type": kind,
            "next": self._flow(name, state, kind),
        }
        if "InputPath" in _ALLOWED[kind]:
            common["input_path"] = _io_path(state, "InputPath", name)
            common["output_path"] = _io_path(state, "OutputPath", name)
        build = getattr(self, f"_{kind.lower()}")
        spec: StateSpec = build(name, state, common)
        return spec

    def _flow(self, name: str, state: Mapping[str, Any], kind: str) -> str | None:
        if kind in ("Choice", "Succeed", "Fail"):
            return None
        has_next, has_end = "Next" in state, "End" in state
        if has_next == has_end:
            raise DefinitionError(
                "needs exactly one of 'Next' (the state to go to) or '\"End\": true'",
                state=name,
                field="Next" if has_next else "End",
            )
        if has_end:
            if state["End"] is not True:
                raise DefinitionError("End must be true (or use Next)", state=name, field="End")
            return None
        next_state = state["Next"]
        if not isinstance(next_state, str) or not next_state:
            raise DefinitionError("Next must be a state name", state=name, field="Next")
        return next_state

    # --- one builder per state type ----------------------------------------------------

    def _pass(self, name: str, state: Mapping[str, Any], common: dict[str, Any]) -> PassSpec:
        return PassSpec(
            **common,
            parameters=_template(state, "Parameters", name),
            has_result="Result" in state,
            result=state.get("Result"),
            result_path=_result_path(state, "ResultPath", name),
        )

    def _task(self, name: str, state: Mapping[str, Any], common: dict[str, Any]) -> TaskSpec:
        resource = state.get("Resource")
        if not isinstance(resource, str) or not resource:
            raise DefinitionError("Resource must be an ARN string", state=name, field="Resource")
        timeout = state.get("TimeoutSeconds")
        timeout_path = _optional_reference(state, "TimeoutSecondsPath", name)
        if timeout is not None:
            if timeout_path is not None:
                raise DefinitionError(
                    "give TimeoutSeconds or TimeoutSecondsPath, not both",
                    state=name,
                    field="TimeoutSecondsPath",
                )
            timeout = _seconds(timeout, name, "TimeoutSeconds", minimum=1)
        heartbeat = state.get("HeartbeatSeconds")
        if heartbeat is not None:
            heartbeat = _seconds(heartbeat, name, "HeartbeatSeconds", minimum=1)
            if timeout is not None and heartbeat >= timeout:
                raise DefinitionError(
                    "HeartbeatSeconds must be smaller than TimeoutSeconds",
                    state=name,
                    field="HeartbeatSeconds",
                )
        _optional_reference(state, "HeartbeatSecondsPath", name)
        return TaskSpec(
            **common,
            resource=resource,
            parameters=_template(state, "Parameters", name),
            parameters_source=state.get("Parameters"),
            result_selector=_template(state, "ResultSelector", name, objects_only=True),
            result_path=_result_path(state, "ResultPath", name),
            timeout_seconds=timeout,
            timeout_seconds_path=timeout_path,
            retry=_retriers(state, name),
            catch=_catchers(state, name),
        )

    def _choice(self, name: str, state: Mapping[str, Any], common: dict[str, Any]) -> ChoiceSpec:
        choices = state.get("Choices")
        if not isinstance(choices, list) or not choices:
            raise DefinitionError(
                "Choices must be a non-empty array of rules", state=name, field="Choices"
            )
        default = state.get("Default")
        if default is not None and not isinstance(default, str):
            raise DefinitionError("Default must be a state name", state=name, field="Default")
        rules = tuple(
            compile_choice_rule(rule, state=name, field=f"Choices[{i}]")
            for i, rule in enumerate(choices)
        )
        return ChoiceSpec(**common, choices=rules, default=default)

    def _wait(self, name: str, state: Mapping[str, Any], common: dict[str, Any]) -> WaitSpec:
        given = [
            key for key in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if key in state
        ]
        if len(given) != 1:
            raise DefinitionError(
                "needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath, "
                f"found {given or 'none'}",
                state=name,
                field=given[1] if len(given) > 1 else "Seconds",
            )
        key = given[0]
        if key == "Seconds":
            return WaitSpec(**common, seconds=_seconds(state[key], name, key, minimum=0))
        if key == "Timestamp":
            moment = parse_timestamp(state[key])
            if moment is None:
                raise DefinitionError(
                    f"Timestamp must be RFC 3339 such as 2016-03-14T01:59:00Z, got {state[key]!r}",
                    state=name,
                    field=key,
                )
            return WaitSpec(**common, timestamp=moment)
        path = _reference_path(state[key], name, key)
        if key == "SecondsPath":
            return WaitSpec(**common, seconds_path=path)
        return WaitSpec(**common, timestamp_path=path)

    def _succeed(
        self, _name: str, _state: Mapping[str, Any], common: dict[str, Any]
    ) -> SucceedSpec:
        return SucceedSpec(**common)

    def _fail(self, name: str, state: Mapping[str, Any], common: dict[str, Any]) -> FailSpec:
        values: dict[str, Any] = {}
        for key, path_key in (("Error", "ErrorPath"), ("Cause", "CausePath")):
            if key in state and path_key in state:
                raise DefinitionError(
                    f"give {key} or {path_key}, not both", state=name, field=path_key
                )
            if key in state:
                if not isinstance(state[key], str):
                    raise DefinitionError(f"{key} must be a string", state=name, field=key)
                values[key.lower()] = state[key]
            if path_key in state:
                values[f"{key.lower()}_path"] = _path_or_intrinsic(state[path_key], name, path_key)
        return FailSpec(**common, **values)

    def _parallel(
        self, name: str, state: Mapping[str, Any], common: dict[str, Any]
    ) -> ParallelSpec:
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            raise DefinitionError(
                "Branches must be a non-empty array of state machines", state=name, field="Branches"
            )
        machines = []
        for index, branch in enumerate(branches):
            where = f"Branches[{index}]."
            if not isinstance(branch, Mapping):
                raise DefinitionError("a branch must be an object", state=name, field=where[:-1])
            _only(branch, ("StartAt", "States", "Comment"), name, where)
            machines.append(self.machine(branch, name, where))
        return ParallelSpec(
            **common,
            branches=tuple(machines),
            parameters=_template(state, "Parameters", name),
            result_selector=_template(state, "ResultSelector", name, objects_only=True),
            result_path=_result_path(state, "ResultPath", name),
            retry=_retriers(state, name),
            catch=_catchers(state, name),
        )

    def _map(self, name: str, state: Mapping[str, Any], common: dict[str, Any]) -> MapSpec:
        if ("ItemProcessor" in state) == ("Iterator" in state):
            raise DefinitionError(
                "needs exactly one of ItemProcessor or (legacy) Iterator",
                state=name,
                field="ItemProcessor",
            )
        key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        processor = state[key]
        if not isinstance(processor, Mapping):
            raise DefinitionError(f"{key} must be an object", state=name, field=key)
        _only(processor, ("StartAt", "States", "Comment", "ProcessorConfig"), name, f"{key}.")
        config = processor.get("ProcessorConfig", {})
        mode = config.get("Mode", "INLINE") if isinstance(config, Mapping) else None
        if mode != "INLINE":
            raise DefinitionError(
                f"only INLINE Map processing is supported by the local executor, got {mode!r}",
                state=name,
                field=f"{key}.ProcessorConfig.Mode",
            )
        if "ItemSelector" in state and "Parameters" in state:
            raise DefinitionError(
                "give ItemSelector or its legacy name Parameters, not both",
                state=name,
                field="Parameters",
            )
        selector_key = "ItemSelector" if "ItemSelector" in state else "Parameters"
        concurrency = state.get("MaxConcurrency", 0)
        concurrency_path = _optional_reference(state, "MaxConcurrencyPath", name)
        if concurrency_path is not None and "MaxConcurrency" in state:
            raise DefinitionError(
                "give MaxConcurrency or MaxConcurrencyPath, not both",
                state=name,
                field="MaxConcurrencyPath",
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
            raise DefinitionError(
                f"MaxConcurrency must be an integer >= 0 (0: no limit), got {concurrency!r}",
                state=name,
                field="MaxConcurrency",
            )
        items_path = state.get("ItemsPath", "$")
        return MapSpec(
            **common,
            processor=self.machine(processor, name, f"{key}."),
            items_path=_reference_path(items_path, name, "ItemsPath"),
            item_selector=_template(state, selector_key, name, objects_only=True),
            max_concurrency=concurrency,
            max_concurrency_path=concurrency_path,
            result_selector=_template(state, "ResultSelector", name, objects_only=True),
            result_path=_result_path(state, "ResultPath", name),
            retry=_retriers(state, name),
            catch=_catchers(state, name),
        )

    # --- transitions ---------------------------------------------------------------------

    def _check_transitions(
        self, machine: MachineSpec, raw: Mapping[str, Any], owner: str | None, where: str
    ) -> None:
        graph: dict[str, list[str]] = {}
        terminal = False
        for name, spec in machine.states.items():
            targets = list(_targets(spec))
            for target, target_field in targets:
                if target not in machine.states:
                    scope = f" of {owner!r}" if owner else ""
                    raise DefinitionError(
                        f"{target!r} is not a state of this machine{scope}; transitions must stay"
                        f" inside it (states here: {sorted(machine.states)})",
                        state=name,
                        field=target_field,
                    )
            graph[name] = [target for target, _ in targets]
            terminal = (
                terminal
                or spec.type in _TERMINAL_TYPES
                or (spec.next is None and spec.type not in ("Choice",))
            )
        if not terminal:
            raise DefinitionError(
                "no state ends the machine: add '\"End\": true', a Succeed or a Fail state",
                state=owner,
                field=f"{where}States",
            )
        reached = {machine.start_at}
        todo = [machine.start_at]
        while todo:
            for target in graph[todo.pop()]:
                if target not in reached:
                    reached.add(target)
                    todo.append(target)
        for name in raw:
            if name not in reached:
                self.warnings.append(f"state {name!r} cannot be reached from {machine.start_at!r}")


def _targets(spec: StateSpec) -> Iterator[tuple[str, str]]:
    if spec.next is not None:
        yield spec.next, "Next"
    if isinstance(spec, ChoiceSpec):
        for index, rule in enumerate(spec.choices):
            yield rule.next, f"Choices[{index}].Next"
        if spec.default is not None:
            yield spec.default, "Default"
    if isinstance(spec, TaskSpec | ParallelSpec | MapSpec):
        for index, catcher in enumerate(spec.catch):
            yield catcher.next, f"Catch[{index}].Next"


# --- field helpers -------------------------------------------------------------------------


def _compile(text: Any, state: str, where: str, *, allow_context: bool = True) -> JsonPath:
    if not isinstance(text, str):
        raise DefinitionError(
            f"must be a path string such as '$.x', got {text!r}", state=state, field=where
        )
    try:
        return compile_path(text, allow_context=allow_context)
    except PathSyntaxError as exc:
        raise DefinitionError(str(exc), state=state, field=where) from None


def _io_path(state: Mapping[str, Any], key: str, name: str) -> JsonPath | None:
    """InputPath or OutputPath: absent means ``$``, ``null`` means None (an empty object)."""
    if key not in state:
        return _ROOT
    if state[key] is None:
        return None
    return _compile(state[key], name, key)


def _optional_reference(state: Mapping[str, Any], key: str, name: str) -> JsonPath | None:
    """An optional reference path field such as TimeoutSecondsPath: absent means None."""
    if key not in state:
        return None
    return _reference_path(state[key], name, key)


def _reference_path(value: Any, name: str, key: str) -> JsonPath:
    path = _compile(value, name, key)
    if not path.definite:
        raise DefinitionError(
            f"must be a reference path (fields and indexes only), got {value!r}",
            state=name,
            field=key,
        )
    return path


def _result_path(state: Mapping[str, Any], key: str, name: str, where: str = "") -> JsonPath | None:
    if key not in state:
        return _ROOT
    if state[key] is None:
        return None
    path = _compile(state[key], name, where + key, allow_context=False)
    if path.field_names is None:
        raise DefinitionError(
            f"a ResultPath may only name object fields, like '$.result', got {state[key]!r}",
            state=name,
            field=where + key,
        )
    return path


def _path_or_intrinsic(value: Any, name: str, key: str) -> JsonPath | Intrinsic:
    if isinstance(value, str) and value.startswith("States."):
        try:
            return compile_intrinsic(value)
        except IntrinsicSyntaxError as exc:
            raise DefinitionError(str(exc), state=name, field=key) from None
    return _reference_path(value, name, key)


def _template(
    state: Mapping[str, Any], key: str, name: str, *, objects_only: bool = False
) -> Template | None:
    if key not in state:
        return None
    value = state[key]
    if objects_only and not isinstance(value, Mapping):
        raise DefinitionError(f"{key} must be an object", state=name, field=key)
    return compile_template(value, state=name, field=key)


def _error_equals(value: Any, name: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise DefinitionError(
            "ErrorEquals must be a non-empty array of error names", state=name, field=where
        )
    for error in value:
        if error.startswith("States.") and error not in KNOWN_STATES_ERRORS:
            raise DefinitionError(
                f"{error!r} is not an error Step Functions defines; names starting with 'States.'"
                f" are reserved (known: {sorted(KNOWN_STATES_ERRORS)})",
                state=name,
                field=where,
            )
    if ALL in value and len(value) > 1:
        raise DefinitionError(
            "States.ALL must appear alone in ErrorEquals", state=name, field=where
        )
    return tuple(value)


def _check_all_last(items: list[tuple[str, ...]], name: str, key: str) -> None:
    for index, errors in enumerate(items[:-1]):
        if ALL in errors:
            raise DefinitionError(
                f"the element of {key} with States.ALL must be the last one",
                state=name,
                field=f"{key}[{index}].ErrorEquals",
            )


def _retriers(state: Mapping[str, Any], name: str) -> tuple[Retrier, ...]:
    raw = state.get("Retry", [])
    if not isinstance(raw, list):
        raise DefinitionError("Retry must be an array of retriers", state=name, field="Retry")
    retriers = []
    for index, item in enumerate(raw):
        where = f"Retry[{index}]"
        if not isinstance(item, Mapping):
            raise DefinitionError("a retrier must be an object", state=name, field=where)
        _only(
            item,
            (
                "ErrorEquals",
                "IntervalSeconds",
                "MaxAttempts",
                "BackoffRate",
                "MaxDelaySeconds",
                "JitterStrategy",
                "Comment",
            ),
            name,
            f"{where}.",
        )
        errors = _error_equals(item.get("ErrorEquals"), name, f"{where}.ErrorEquals")
        interval = _seconds(
            item.get("IntervalSeconds", 1), name, f"{where}.IntervalSeconds", minimum=1
        )
        attempts = _seconds(item.get("MaxAttempts", 3), name, f"{where}.MaxAttempts", minimum=0)
        backoff = item.get("BackoffRate", 2.0)
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 1.0:
            raise DefinitionError(
                f"BackoffRate must be a number >= 1.0, got {backoff!r}",
                state=name,
                field=f"{where}.BackoffRate",
            )
        max_delay = item.get("MaxDelaySeconds")
        if max_delay is not None:
            max_delay = _seconds(max_delay, name, f"{where}.MaxDelaySeconds", minimum=1)
        jitter = item.get("JitterStrategy", "NONE")
        if jitter not in ("FULL", "NONE"):
            raise DefinitionError(
                f"JitterStrategy must be FULL or NONE, got {jitter!r}",
                state=name,
                field=f"{where}.JitterStrategy",
            )
        retriers.append(
            Retrier(errors, float(interval), attempts, float(backoff), max_delay, jitter == "FULL")
        )
    _check_all_last([r.error_equals for r in retriers], name, "Retry")
    return tuple(retriers)


def _catchers(state: Mapping[str, Any], name: str) -> tuple[Catcher, ...]:
    raw = state.get("Catch", [])
    if not isinstance(raw, list):
        raise DefinitionError("Catch must be an array of catchers", state=name, field="Catch")
    catchers = []
    for index, item in enumerate(raw):
        where = f"Catch[{index}]"
        if not isinstance(item, Mapping):
            raise DefinitionError("a catcher must be an object", state=name, field=where)
        _only(item, ("ErrorEquals", "Next", "ResultPath", "Comment"), name, f"{where}.")
        errors = _error_equals(item.get("ErrorEquals"), name, f"{where}.ErrorEquals")
        next_state = item.get("Next")
        if not isinstance(next_state, str) or not next_state:
            raise DefinitionError(
                "Next must name the state to go to", state=name, field=f"{where}.Next"
            )
        result_path = _result_path(item, "ResultPath", name, f"{where}.")
        catchers.append(Catcher(errors, next_state, result_path))
    _check_all_last([c.error_equals for c in catchers], name, "Catch")
    return tuple(catchers)
