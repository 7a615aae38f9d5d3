"""Payload templates: Parameters, ResultSelector and ItemSelector, compiled once.

A field whose name ends in ``.$`` takes its value from a path (``$...`` on the data,
``$$...`` on the context object) or an intrinsic function, under the name without
``.$``; every other field is copied as written. Nested objects and arrays are templates
too. Parts without ``.$`` fields are shared, not rebuilt, on every render: the executor
never changes a value in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from strangler.instant.asl.errors import RUNTIME, EvaluationError, PathNotFound
from strangler.instant.asl.intrinsics import (
    IntrinsicScope,
    IntrinsicSyntaxError,
    compile_intrinsic,
)
from strangler.instant.asl.paths import PathSyntaxError, compile_path
from strangler.instant.exceptions import DefinitionError

__all__ = ["Template", "compile_template"]

_Render = Callable[[Any, IntrinsicScope], Any]
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class Template:
    """A compiled payload template; :meth:`render` builds the payload from the data."""

    __slots__ = ("_render", "constant", "uses_context")

    def __init__(self, render: _Render, constant: bool, uses_context: bool) -> None:
        self._render = render
        self.constant = constant
        self.uses_context = uses_context

    def render(self, data: Any, scope: IntrinsicScope) -> Any:
        """The payload; raises EvaluationError when a path or intrinsic function fails."""
        return self._render(data, scope)


def compile_template(value: Any, *, state: str, field: str) -> Template:
    """Compile a template; raises DefinitionError naming the state and the bad field."""
    render, constant, uses_context = _compile(value, state, field)
    return Template(render, constant, uses_context)


def _compile(value: Any, state: str, field: str) -> tuple[_Render, bool, bool]:
    if isinstance(value, dict):
        return _compile_object(value, state, field)
    if isinstance(value, list):
        parts = [_compile(item, state, f"{field}[{i}]") for i, item in enumerate(value)]
        if all(constant for _, constant, _ in parts):
            return _constant(value), True, False
        renders = [render for render, _, _ in parts]
        return (
            (lambda data, scope: [render(data, scope) for render in renders]),
            False,
            any(uses for _, _, uses in parts),
        )
    return _constant(value), True, False


def _compile_object(value: dict[str, Any], state: str, field: str) -> tuple[_Render, bool, bool]:
    entries: list[tuple[str, _Render]] = []
    constants: dict[str, Any] = {}  # every field in order; the constant ones with values
    dynamic = False
    uses_context = False
    seen: set[str] = set()
    for key, item in value.items():
        if not isinstance(key, str):
            raise DefinitionError(f"field names must be strings, got {key!r}", state=state)
        where = f"{field}.{key}"
        name = key[:-2] if key.endswith(".$") else key
        if name in seen:
            raise DefinitionError(
                f"{name!r} is given twice (once with '.$'); keep one", state=state, field=where
            )
        seen.add(name)
        constants[name] = None
        if key.endswith(".$"):
            render, uses = _compile_dynamic(item, key, state, where)
            dynamic = True
            uses_context = uses_context or uses
        else:
            render, constant, uses = _compile(item, state, where)
            dynamic = dynamic or not constant
            uses_context = uses_context or uses
            if constant:
                constants[name] = item  # what its render gives: the value as written
                continue
        entries.append((name, render))
    if not dynamic:
        return _constant(value), True, False

    def render_object(data: Any, scope: IntrinsicScope) -> dict[str, Any]:
        # The constant fields come with the copy, in their places; the others are set in
        # theirs (setting a key already there keeps its position).
        rendered = constants.copy()
        for name, render in entries:
            rendered[name] = render(data, scope)
        return rendered

    return render_object, False, uses_context


def _compile_dynamic(item: Any, key: str, state: str, where: str) -> tuple[_Render, bool]:
    if not isinstance(item, str):
        raise DefinitionError(
            f"a field ending in '.$' needs a path or intrinsic function string, got {item!r}",
            state=state,
            field=where,
        )
    try:
        if item.startswith("$"):
            path = compile_path(item)
        elif item.startswith("States."):
            intrinsic = compile_intrinsic(item)
            return intrinsic.evaluate, intrinsic.uses_context
        else:
            raise DefinitionError(
                f"{item!r} is neither a path ('$...') nor an intrinsic function ('States....');"
                " drop the '.$' from the field name to use it as a literal",
                state=state,
                field=where,
            )
    except (PathSyntaxError, IntrinsicSyntaxError) as exc:
        raise DefinitionError(str(exc), state=state, field=where) from None

    def render_path(data: Any, scope: IntrinsicScope) -> Any:
        try:
            return path.find(data, scope)
        except PathNotFound:
            raise EvaluationError(
                RUNTIME,
                f"The JSONPath '{path.text}' specified for the field '{key}' could not be "
                f"found in the input '{_COMPACT.encode(data)}'",
            ) from None

    names = path.field_names
    if path.from_context or names is None or len(names) != 1:
        return render_path, path.from_context
    name = names[0]

    def render_field(data: Any, scope: IntrinsicScope) -> Any:
        # "$.field", the usual case: one lookup; anything else goes the general way.
        if type(data) is dict:
            value = data.get(name, _MISSING)
            if value is not _MISSING:
                return value
        return render_path(data, scope)

    return render_field, False


_MISSING = object()


def _constant(value: Any) -> _Render:
    return lambda _data, _scope: value
