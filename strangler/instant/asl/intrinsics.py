"""Intrinsic functions (``States.Format(...)`` and friends), parsed once, evaluated per use.

An invocation is ``States.Name(arg, ...)`` where each argument is a quoted string (with
the escapes ``\\'``, ``\\{``, ``\\}`` and ``\\\\``), a number, ``true``/``false``/``null``,
a path (``$...`` or ``$$...``) or another invocation (nested up to 10 deep, as in Step
Functions). Wrong arguments at run time raise EvaluationError(States.IntrinsicFailure).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from strangler.instant.asl.errors import INTRINSIC_FAILURE, EvaluationError
from strangler.instant.asl.ids import random_uuid
from strangler.instant.asl.paths import (
    JsonPath,
    PathSyntaxError,
    Scope,
    compile_path,
    json_equal,
    json_type,
)

__all__ = [
    "FUNCTIONS",
    "Intrinsic",
    "IntrinsicScope",
    "IntrinsicSyntaxError",
    "compile_intrinsic",
]

MAX_NESTING = 10
MAX_TEXT = 10_000
MAX_RANGE_ITEMS = 1000
_INT32 = (-(2**31), 2**31 - 1)
_HASHES = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class IntrinsicScope(Scope, Protocol):
    """A path scope that also offers the execution's random source (None: the system's)."""

    @property
    def rng(self) -> random.Random | None: ...


class IntrinsicSyntaxError(ValueError):
    """An intrinsic function invocation is malformed or names an unknown function."""


class _Failure(Exception):
    """Raised by a function body; turned into EvaluationError naming the function."""


@dataclass(frozen=True, slots=True)
class _Args:
    """What a function body gets: the evaluated arguments, the call and the scope."""

    values: list[Any]
    call: Intrinsic
    scope: IntrinsicScope


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any
    format_parts: tuple[str, ...] | None = None  # split at unescaped "{}" (string literals)


@dataclass(frozen=True, slots=True)
class _PathArgument:
    path: JsonPath

    def evaluate(self, data: Any, scope: IntrinsicScope) -> Any:
        return self.path.find(data, scope)


_Argument = _Literal | _PathArgument


@dataclass(frozen=True, slots=True)
class Intrinsic:
    """A compiled invocation; :meth:`evaluate` runs it against a state's data."""

    name: str
    arguments: tuple[_Argument | Intrinsic, ...]

    @property
    def uses_context(self) -> bool:
        """Whether any argument reads the context object."""
        return any(
            (isinstance(arg, _PathArgument) and arg.path.from_context)
            or (isinstance(arg, Intrinsic) and arg.uses_context)
            for arg in self.arguments
        )

    def evaluate(self, data: Any, scope: IntrinsicScope) -> Any:
        """The function's value; raises EvaluationError (path or intrinsic failure)."""
        values = [
            arg.value if isinstance(arg, _Literal) else arg.evaluate(data, scope)
            for arg in self.arguments
        ]
        body = FUNCTIONS[self.name][2]
        try:
            return body(_Args(values, self, scope))
        except _Failure as exc:
            raise EvaluationError(
                INTRINSIC_FAILURE, f"Invalid arguments in {self.name}: {exc}"
            ) from None


def compile_intrinsic(text: str) -> Intrinsic:
    """Parse an invocation; raises IntrinsicSyntaxError saying what is wrong."""
    parser = _Parser(text)
    call = parser.call(depth=1)
    parser.spaces()
    if parser.pos != len(text):
        raise parser.fail(f"unexpected text after the invocation: {text[parser.pos :]!r}")
    return call


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(f"invalid intrinsic function {self.text!r}: {problem}")

    def spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def call(self, depth: int) -> Intrinsic:
        if depth > MAX_NESTING:
            raise self.fail(f"intrinsic functions nest at most {MAX_NESTING} deep")
        start = self.pos
        while self.pos < len(self.text) and (
            self.text[self.pos].isalnum() or self.text[self.pos] == "."
        ):
            self.pos += 1
        name = self.text[start : self.pos]
        if name not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.fail(f"unknown function {name!r}; known functions: {known}")
        if self.text[self.pos : self.pos + 1] != "(":
            raise self.fail(f"expected '(' after {name}")
        self.pos += 1
        arguments: list[_Argument | Intrinsic] = []
        self.spaces()
        if self.text[self.pos : self.pos + 1] == ")":
            self.pos += 1
        else:
            while True:
                arguments.append(self.argument(depth))
                self.spaces()
                char = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if char == ")":
                    break
                if char != ",":
                    raise self.fail(f"expected ',' or ')' at position {self.pos - 1}")
        low, high, _ = FUNCTIONS[name]
        if not low <= len(arguments) <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            raise self.fail(f"{name} takes {wanted} arguments, got {len(arguments)}")
        call = Intrinsic(name, tuple(arguments))
        _check_format(call, self.fail)
        return call

    def argument(self, depth: int) -> _Argument | Intrinsic:
        self.spaces()
        rest = self.text[self.pos :]
        if rest.startswith("'"):
            return self.string()
        if rest.startswith("$"):
            return self.path()
        if rest.startswith("States."):
            return self.call(depth + 1)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if rest.startswith(word):
                self.pos += len(word)
                return _Literal(value)
        return self.number()

    def string(self) -> _Literal:
        self.pos += 1  # opening quote
        parts: list[str] = []
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                escaped = self.text[self.pos + 1 : self.pos + 2]
                if escaped not in ("'", "{", "}", "\\"):
                    raise self.fail(f"open escape '\\' at position {self.pos}")
                chars.append(escaped)
                self.pos += 2
                continue
            if char == "'":
                self.pos += 1
                parts.append("".join(chars))
                return _Literal("{}".join(parts), tuple(parts))
            if self.text.startswith("{}", self.pos):
                parts.append("".join(chars))
                chars = []
                self.pos += 2
                continue
            chars.append(char)
            self.pos += 1
        raise self.fail("unclosed string literal")

    def path(self) -> _PathArgument:
        start = self.pos
        depth = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if depth and char in "'\"":
                self.pos = _skip_quoted(self.text, self.pos)
                continue
            if char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
            elif depth == 0 and (char in ",)" or char.isspace()):
                break
            self.pos += 1
        try:
            return _PathArgument(compile_path(self.text[start : self.pos]))
        except PathSyntaxError as exc:
            raise self.fail(str(exc)) from None

    def number(self) -> _Literal:
        start = self.pos
        while self.pos < len(self.text) and (
            self.text[self.pos].isdigit() or self.text[self.pos] in "+-.eE"
        ):
            self.pos += 1
        token = self.text[start : self.pos]
        try:
            value: int | float = float(token) if any(c in token for c in ".eE") else int(token)
        except ValueError:
            raise self.fail(f"expected an argument at position {start}") from None
        return _Literal(value)


def _skip_quoted(text: str, position: int) -> int:
    quote = text[position]
    index = position + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    return index


def _check_format(call: Intrinsic, fail: Callable[[str], IntrinsicSyntaxError]) -> None:
    if call.name != "States.Format" or not call.arguments:
        return
    template = call.arguments[0]
    if isinstance(template, _Literal):
        if template.format_parts is None:
            raise fail("States.Format needs a string as its first argument")
        wanted = len(template.format_parts) - 1
        if wanted != len(call.arguments) - 1:
            raise fail(
                f"the template has {wanted} '{{}}' placeholders but "
                f"{len(call.arguments) - 1} values follow it"
            )


# --- the functions ------------------------------------------------------------------


def _format(args: _Args) -> str:
    template, *arguments = args.values
    first = args.call.arguments[0]
    if isinstance(first, _Literal) and first.format_parts is not None:
        parts: Sequence[str] = first.format_parts
    elif isinstance(template, str):
        parts = template.split("{}")
    else:
        raise _Failure(f"the template must be a string, got {json_type(template)}")
    if len(parts) - 1 != len(arguments):
        raise _Failure(
            f"the template has {len(parts) - 1} placeholders but {len(arguments)} values follow"
        )
    pieces = [parts[0]]
    for argument, part in zip(arguments, parts[1:], strict=True):
        pieces.append(_format_value(argument))
        pieces.append(part)
    return "".join(pieces)


def _format_value(value: Any) -> str:
    """How Step Functions (Java) renders a value inside States.Format."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_format_value(v)}" for k, v in value.items()) + "}"
    return _COMPACT.encode(value)


def _string_to_json(args: _Args) -> Any:
    (text,) = args.values
    if not isinstance(text, str):
        raise _Failure(f"expected a string, got {json_type(text)}")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _Failure(f"the string is not JSON ({exc})") from None


def _json_to_string(args: _Args) -> str:
    return _COMPACT.encode(args.values[0])


def _array(args: _Args) -> list[Any]:
    return list(args.values)


def _array_partition(args: _Args) -> list[Any]:
    array, size = _need_array(args.values[0]), _need_int(args.values[1], "chunk size")
    if size < 1:
        raise _Failure(f"the chunk size must be positive, got {size}")
    return [array[i : i + size] for i in range(0, len(array), size)]


def _array_contains(args: _Args) -> bool:
    array, wanted = _need_array(args.values[0]), args.values[1]
    return any(json_equal(item, wanted) for item in array)


def _array_range(args: _Args) -> list[int]:
    start, end, step = (
        _need_int(v, name) for v, name in zip(args.values, ("start", "end", "step"), strict=True)
    )
    if step == 0:
        raise _Failure("the step must not be 0")
    result = list(range(start, end + (1 if step > 0 else -1), step))
    if len(result) > MAX_RANGE_ITEMS:
        raise _Failure(f"the range would hold {len(result)} items; at most {MAX_RANGE_ITEMS}")
    return result


def _array_get_item(args: _Args) -> Any:
    array, index = _need_array(args.values[0]), _need_int(args.values[1], "index")
    if not 0 <= index < len(array):
        raise _Failure(f"index {index} is out of bounds for an array of {len(array)} items")
    return array[index]


def _array_length(args: _Args) -> int:
    return len(_need_array(args.values[0]))


def _array_unique(args: _Args) -> list[Any]:
    seen: set[str] = set()
    unique: list[Any] = []
    for item in _need_array(args.values[0]):
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _base64_encode(args: _Args) -> str:
    text = _need_text(args.values[0])
    return base64.b64encode(text.encode()).decode("ascii")


def _base64_decode(args: _Args) -> str:
    text = _need_text(args.values[0])
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _Failure(f"not base64-encoded UTF-8 text ({exc})") from None


def _hash(args: _Args) -> str:
    data, algorithm = args.values
    if data is None:
        raise _Failure("the data to hash must not be null")
    text = _need_text(data if isinstance(data, str) else _COMPACT.encode(data))
    if algorithm not in _HASHES:
        raise _Failure(f"unknown algorithm {algorithm!r}; use one of {', '.join(_HASHES)}")
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _json_merge(args: _Args) -> dict[str, Any]:
    left, right, deep = args.values
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise _Failure(
            f"both args.values must be objects, got {json_type(left)}, {json_type(right)}"
        )
    if deep is not False:
        raise _Failure("only a shallow merge is supported: the third argument must be false")
    return {**left, **right}


def _math_random(args: _Args) -> int:
    start, end = _need_int(args.values[0], "start"), _need_int(args.values[1], "end")
    if start > end:
        raise _Failure(f"start {start} is greater than end {end}")
    if len(args.values) == 3:
        return random.Random(_need_int(args.values[2], "seed")).randint(start, end)
    rng = args.scope.rng
    return rng.randint(start, end) if rng is not None else random.randint(start, end)


def _math_add(args: _Args) -> int:
    total = 0
    for value in args.values:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Failure(f"expected numbers, got {json_type(value)}")
        rounded = math.floor(value + 0.5)  # Java's Math.round
        if not _INT32[0] <= rounded <= _INT32[1]:
            raise _Failure(f"{value} is outside the 32-bit integer range")
        total += rounded
    return total


def _string_split(args: _Args) -> list[str]:
    text, delimiters = args.values
    if not isinstance(text, str) or not isinstance(delimiters, str):
        raise _Failure(f"expected two strings, got {json_type(text)}, {json_type(delimiters)}")
    parts = [text]
    for delimiter in delimiters:
        parts = [piece for part in parts for piece in part.split(delimiter)]
    return [part for part in parts if part]


def _uuid(args: _Args) -> str:
    return random_uuid(args.scope.rng)


def _need_array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Failure(f"expected an array, got {json_type(value)}")
    return value


def _need_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Failure(f"the {what} must be an integer, got {json_type(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise _Failure(f"the {what} must be an integer, got {value}")
        return int(value)
    return value


def _need_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Failure(f"expected a string, got {json_type(value)}")
    if len(value) > MAX_TEXT:
        raise _Failure(f"the string has {len(value)} characters; at most {MAX_TEXT}")
    return value


_Body = Callable[[_Args], Any]

# name -> (fewest arguments, most arguments, body)
FUNCTIONS: dict[str, tuple[int, int, _Body]] = {
    "States.Format": (1, 1_000, _format),
    "States.StringToJson": (1, 1, _string_to_json),
    "States.JsonToString": (1, 1, _json_to_string),
    "States.Array": (0, 1_000, _array),
    "States.ArrayPartition": (2, 2, _array_partition),
    "States.ArrayContains": (2, 2, _array_contains),
    "States.ArrayRange": (3, 3, _array_range),
    "States.ArrayGetItem": (2, 2, _array_get_item),
    "States.ArrayLength": (1, 1, _array_length),
    "States.ArrayUnique": (1, 1, _array_unique),
    "States.Base64Encode": (1, 1, _base64_encode),
    "States.Base64Decode": (1, 1, _base64_decode),
    "States.Hash": (2, 2, _hash),
    "States.JsonMerge": (3, 3, _json_merge),
    "States.MathRandom": (2, 3, _math_random),
    "States.MathAdd": (2, 2, _math_add),
    "States.StringSplit": (2, 2, _string_split),
    "States.UUID": (0, 0, _uuid),
}
