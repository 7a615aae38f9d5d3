"""JSONPath as the Amazon States Language uses it, compiled once, evaluated many times.

Supported syntax (Step Functions evaluates paths with Jayway JsonPath; this is the
subset ASL definitions use, written here because it is small and several times faster
than a general JSONPath library; see docs/asl-executor.md):

- ``$`` (the state's input) and ``$$`` (the context object) as the root;
- ``.name`` and ``['name']`` / ``["name"]`` fields, ``[n]`` indexes (negative from the end);
- ``.*`` / ``[*]`` wildcards, ``['a','b']`` and ``[0,2]`` unions, ``[start:stop:step]`` slices;
- ``..name`` / ``..*`` / ``..[n]`` deep scan;
- ``[?(...)]`` filters over the objects of an array: ``@.field`` paths, literals
  (numbers, quoted strings, true, false, null), ``== != < <= > >=``, ``&& || !``, parentheses,
  and ``@.field`` alone as an existence test;
- a trailing ``.length()``.

A *definite* path (only fields and indexes) yields one value and raises
:class:`~strangler.instant.asl.errors.PathNotFound` when it matches nothing; any other
path yields the list of its matches, possibly empty. Evaluation never copies or changes
the data it reads; :func:`set_at` builds a new object along the written path only.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from strangler.instant.asl.errors import RESULT_PATH_MATCH_FAILURE, EvaluationError, PathNotFound

__all__ = [
    "JsonPath",
    "PathSyntaxError",
    "Scope",
    "compile_path",
    "json_equal",
    "json_type",
    "set_at",
]


class Scope(Protocol):
    """Where a path finds the context object (``$$``) of the state being run."""

    def context(self) -> Any: ...


class PathSyntaxError(ValueError):
    """A path is not valid JSONPath (or uses what ASL does not allow where it is used)."""


_MISSING: Any = object()
_Key = str | int


@dataclass(frozen=True, slots=True)
class _Name:
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    index: int


@dataclass(frozen=True, slots=True)
class _Union:
    keys: tuple[_Key, ...]


@dataclass(frozen=True, slots=True)
class _Wildcard:
    pass


@dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True, slots=True)
class _DeepScan:
    inner: _Selector


@dataclass(frozen=True, slots=True)
class _Filter:
    predicate: Callable[[dict[str, Any]], bool]


_Selector = _Name | _Index | _Union | _Wildcard | _Slice | _DeepScan | _Filter


def json_type(value: Any) -> str:
    """The JSON type name of a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class JsonPath:
    """A compiled path; :meth:`find` evaluates it against a state's data or context."""

    __slots__ = (
        "_keys",
        "_length",
        "_selectors",
        "definite",
        "field_names",
        "from_context",
        "is_root",
        "text",
    )

    def __init__(
        self, text: str, from_context: bool, selectors: tuple[_Selector, ...], length: bool
    ) -> None:
        self.text = text
        self.from_context = from_context
        self._selectors = selectors
        self._length = length
        keys = [_key_of(selector) for selector in selectors]
        self._keys: tuple[_Key, ...] | None = (
            tuple(k for k in keys if k is not None) if None not in keys else None
        )
        self.definite = self._keys is not None
        # True for "$" (or "$$") alone.
        self.is_root = not selectors and not length
        # The field names of a path made only of fields (a valid ResultPath), else None.
        self.field_names: tuple[str, ...] | None = None
        if self._keys is not None and not length and all(isinstance(k, str) for k in self._keys):
            self.field_names = tuple(str(key) for key in self._keys)

    def find(self, data: Any, scope: Scope | None = None) -> Any:
        """The value (definite path) or list of matches the path selects.

        Raises PathNotFound when a definite path matches nothing.
        """
        root = data
        if self.from_context:
            if scope is None:
                raise PathNotFound(f"No context object to evaluate {self.text}")
            root = scope.context()
        if self._keys is not None:
            value = self._walk(root, self._keys)
            return _length_of(value, self.text) if self._length else value
        nodes = [root]
        for selector in self._selectors:
            nodes = _apply(selector, nodes)
        return _length_of(nodes, self.text) if self._length else nodes

    def _walk(self, node: Any, keys: tuple[_Key, ...]) -> Any:
        for position, key in enumerate(keys):
            if isinstance(key, str):
                if isinstance(node, dict):
                    value = node.get(key, _MISSING)
                    if value is not _MISSING:
                        node = value
                        continue
                    raise PathNotFound(self._missing(keys, position))
                raise PathNotFound(
                    f"Expected to find an object with property {_segment(key)} in path "
                    f"{_normalized(self, keys[:position])} but found '{json_type(node)}'"
                )
            if isinstance(node, list):
                if -len(node) <= key < len(node):
                    node = node[key]
                    continue
                raise PathNotFound(self._missing(keys, position))
            raise PathNotFound(
                f"Expected to find an array with index {_segment(key)} in path "
                f"{_normalized(self, keys[:position])} but found '{json_type(node)}'"
            )
        return node

    def _missing(self, keys: tuple[_Key, ...], position: int) -> str:
        if position == len(keys) - 1:
            return f"No results for path: {_normalized(self, keys)}"
        return f"Missing property in path {_normalized(self, keys[: position + 1])}"

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"


def set_at(path: JsonPath, root: Any, value: Any) -> Any:
    """``root`` with ``value`` written at ``path`` (a ResultPath); ``root`` is left unchanged.

    Objects on the way are copied (shallowly) and missing ones created. Raises
    EvaluationError(States.ResultPathMatchFailure) when something on the way is not an
    object.
    """
    names = path.field_names
    if names is None:
        raise EvaluationError(RESULT_PATH_MATCH_FAILURE, f"cannot write to path {path.text}")
    if not names:
        return value
    if not isinstance(root, dict):
        raise _mismatch(path, names, 0, root)
    new_root = dict(root)
    node = new_root
    for position, name in enumerate(names[:-1], start=1):
        child = node.get(name, _MISSING)
        if child is _MISSING:
            child = {}
        elif isinstance(child, dict):
            child = dict(child)
        else:
            raise _mismatch(path, names, position, child)
        node[name] = child
        node = child
    node[names[-1]] = value
    return new_root


def _mismatch(path: JsonPath, names: tuple[str, ...], position: int, found: Any) -> EvaluationError:
    where = _normalized(path, names[:position])
    return EvaluationError(
        RESULT_PATH_MATCH_FAILURE,
        f"Unable to apply ResultPath '{path.text}': {where} is {json_type(found)}, not an object",
    )


def _key_of(selector: _Selector) -> _Key | None:
    if isinstance(selector, _Name):
        return selector.name
    if isinstance(selector, _Index):
        return selector.index
    return None


def _segment(key: _Key) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']"


def _normalized(path: JsonPath, keys: tuple[_Key, ...]) -> str:
    root = "$$" if path.from_context else "$"
    return root + "".join(_segment(key) for key in keys)


def _length_of(value: Any, text: str) -> int:
    if isinstance(value, list | dict | str):
        return len(value)
    raise PathNotFound(f"Function length() in path {text} needs an array, object or string")


def _apply(selector: _Selector, nodes: list[Any]) -> list[Any]:
    if isinstance(selector, _DeepScan):
        return _apply(selector.inner, [d for node in nodes for d in _descendants(node)])
    select = _SELECT[type(selector)]
    return [found for node in nodes for found in select(selector, node)]


def _select_name(selector: Any, node: Any) -> Iterator[Any]:
    if isinstance(node, dict) and selector.name in node:
        yield node[selector.name]


def _select_index(selector: Any, node: Any) -> Iterator[Any]:
    if isinstance(node, list) and -len(node) <= selector.index < len(node):
        yield node[selector.index]


def _select_union(selector: Any, node: Any) -> Iterator[Any]:
    return _union(node, selector.keys)


def _select_wildcard(_selector: Any, node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield from node.values()
    elif isinstance(node, list):
        yield from node


def _select_slice(selector: Any, node: Any) -> Iterator[Any]:
    if isinstance(node, list):
        yield from node[selector.start : selector.stop : selector.step]


def _select_filter(selector: Any, node: Any) -> Iterator[Any]:
    if isinstance(node, list):
        yield from (item for item in node if isinstance(item, dict) and selector.predicate(item))
    elif isinstance(node, dict) and selector.predicate(node):
        yield node


_SELECT: dict[type, Callable[[Any, Any], Iterator[Any]]] = {
    _Name: _select_name,
    _Index: _select_index,
    _Union: _select_union,
    _Wildcard: _select_wildcard,
    _Slice: _select_slice,
    _Filter: _select_filter,
}


def _union(node: Any, keys: tuple[_Key, ...]) -> Iterator[Any]:
    for key in keys:
        if isinstance(key, str):
            if isinstance(node, dict) and key in node:
                yield node[key]
        elif isinstance(node, list) and -len(node) <= key < len(node):
            yield node[key]


def _descendants(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _descendants(child)


# --- parsing -------------------------------------------------------------------------


def compile_path(text: str, *, allow_context: bool = True) -> JsonPath:
    """Compile a path; raises PathSyntaxError naming what is wrong."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathSyntaxError(f"a path must be a string starting with '$', got {text!r}")
    from_context = text.startswith("$$")
    if from_context and not allow_context:
        raise PathSyntaxError(f"the context object ($$) cannot be used here: {text!r}")
    parser = _PathParser(text, 2 if from_context else 1)
    selectors, length = parser.parse()
    return JsonPath(text, from_context, selectors, length)


class _PathParser:
    def __init__(self, text: str, position: int) -> None:
        self.text = text
        self.pos = position

    def fail(self, problem: str) -> PathSyntaxError:
        return PathSyntaxError(f"invalid path {self.text!r} at position {self.pos}: {problem}")

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def parse(self) -> tuple[tuple[_Selector, ...], bool]:
        selectors: list[_Selector] = []
        while self.pos < len(self.text):
            char = self.peek()
            if char == "[":
                selectors.append(self.bracket())
            elif char == "." and self.peek(1) == ".":
                self.pos += 2
                selectors.append(_DeepScan(self.after_deep_scan()))
            elif char == ".":
                self.pos += 1
                selector = self.dotted()
                if selector is None:
                    if self.pos != len(self.text):
                        raise self.fail("length() must end the path")
                    return tuple(selectors), True
                selectors.append(selector)
            else:
                raise self.fail(f"unexpected {char!r}")
        return tuple(selectors), False

    def after_deep_scan(self) -> _Selector:
        if self.peek() == "[":
            return self.bracket()
        selector = self.dotted()
        if selector is None:
            raise self.fail("length() cannot follow '..'")
        return selector

    def dotted(self) -> _Selector | None:
        if self.peek() == "*":
            self.pos += 1
            return _Wildcard()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ".[":
            self.pos += 1
        name = self.text[start : self.pos]
        if not name or any(char.isspace() for char in name):
            raise self.fail(f"expected a field name, got {name!r}")
        if name.endswith(")"):
            if name != "length()":
                raise self.fail(f"unsupported function {name!r} (only length() is)")
            return None
        return _Name(name)

    def bracket(self) -> _Selector:
        self.pos += 1  # '['
        self.skip_spaces()
        char = self.peek()
        if char == "*":
            self.pos += 1
            selector: _Selector = _Wildcard()
        elif char == "?":
            selector = self.filter()
        elif char and char in "'\"":
            names = [self.quoted()]
            self.skip_spaces()
            while self.peek() == ",":
                self.pos += 1
                self.skip_spaces()
                names.append(self.quoted())
                self.skip_spaces()
            selector = _Name(names[0]) if len(names) == 1 else _Union(tuple(names))
        else:
            selector = self.numeric()
        self.skip_spaces()
        if self.peek() != "]":
            raise self.fail("expected ']'")
        self.pos += 1
        return selector

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def quoted(self) -> str:
        quote = self.peek()
        if not quote or quote not in "'\"":
            raise self.fail("expected a quoted field name")
        value, self.pos = _read_quoted(self.text, self.pos, self.fail)
        return value

    def numeric(self) -> _Selector:
        end = self.text.find("]", self.pos)
        if end < 0:
            raise self.fail("expected ']'")
        content = self.text[self.pos : end].replace(" ", "")
        self.pos = end
        try:
            if ":" in content:
                parts = content.split(":")
                if len(parts) > 3:
                    raise ValueError(content)
                bounds = [int(part) if part else None for part in parts] + [None]
                if bounds[2] == 0:
                    raise ValueError(content)
                return _Slice(bounds[0], bounds[1], bounds[2])
            indexes = tuple(int(part) for part in content.split(","))
        except ValueError:
            raise self.fail(
                f"expected an index, a list of indexes or a slice, got {content!r}"
            ) from None
        return _Index(indexes[0]) if len(indexes) == 1 else _Union(indexes)

    def filter(self) -> _Filter:
        self.pos += 1  # '?'
        if self.peek() != "(":
            raise self.fail("expected '(' after '?'")
        start = self.pos + 1
        depth = 0
        while self.pos < len(self.text):
            char = self.peek()
            if char in "'\"":
                _, self.pos = _read_quoted(self.text, self.pos, self.fail)
                continue
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    expression = self.text[start : self.pos]
                    self.pos += 1
                    return _Filter(_FilterParser(expression, self.text).parse())
            self.pos += 1
        raise self.fail("unclosed filter expression")


def _read_quoted(
    text: str, position: int, fail: Callable[[str], PathSyntaxError]
) -> tuple[str, int]:
    quote = text[position]
    chars: list[str] = []
    index = position + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            chars.append(text[index + 1])
            index += 2
            continue
        if char == quote:
            return "".join(chars), index + 1
        chars.append(char)
        index += 1
    raise fail("unclosed quote")


# --- filter expressions --------------------------------------------------------------

_Operand = Callable[[dict[str, Any]], Any]
_CONSTANTS: tuple[tuple[str, Any], ...] = (("true", True), ("false", False), ("null", None))
_COMPARATORS = ("==", "!=", "<=", ">=", "<", ">")


class _FilterParser:
    """Recursive descent over ``||``, ``&&``, ``!``, parentheses and comparisons."""

    def __init__(self, expression: str, path_text: str) -> None:
        self.text = expression
        self.path_text = path_text
        self.pos = 0

    def fail(self, problem: str) -> PathSyntaxError:
        return PathSyntaxError(f"invalid filter in path {self.path_text!r}: {problem}")

    def parse(self) -> Callable[[dict[str, Any]], bool]:
        predicate = self.disjunction()
        self.spaces()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos :]!r}")
        return predicate

    def spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def take(self, token: str) -> bool:
        self.spaces()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def disjunction(self) -> Callable[[dict[str, Any]], bool]:
        terms = [self.conjunction()]
        while self.take("||"):
            terms.append(self.conjunction())
        if len(terms) == 1:
            return terms[0]
        return lambda item: any(term(item) for term in terms)

    def conjunction(self) -> Callable[[dict[str, Any]], bool]:
        terms = [self.unary()]
        while self.take("&&"):
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        return lambda item: all(term(item) for term in terms)

    def unary(self) -> Callable[[dict[str, Any]], bool]:
        if self.take("!"):
            inner = self.unary()
            return lambda item: not inner(item)
        if self.take("("):
            inner = self.disjunction()
            if not self.take(")"):
                raise self.fail("expected ')'")
            return inner
        return self.comparison()

    def comparison(self) -> Callable[[dict[str, Any]], bool]:
        left, left_is_path = self.operand()
        self.spaces()
        for op in _COMPARATORS:
            if self.take(op):
                right, _ = self.operand()
                return _comparison(op, left, right)
        if not left_is_path:
            raise self.fail("a literal alone is not a condition")
        return lambda item: left(item) is not _MISSING

    def operand(self) -> tuple[_Operand, bool]:
        self.spaces()
        if self.text.startswith("@", self.pos):
            start = self.pos
            self.pos += 1
            while self.pos < len(self.text) and self.text[self.pos] not in " =!<>&|)":
                if self.text[self.pos] in "'\"":
                    _, self.pos = _read_quoted(self.text, self.pos, self.fail)
                else:
                    self.pos += 1
            relative = compile_path("$" + self.text[start + 1 : self.pos])
            if not relative.definite:
                raise self.fail(f"{self.text[start : self.pos]!r} must name one field")
            return (lambda item: _relative(relative, item)), True
        value = self.literal()
        return (lambda _item: value), False

    def literal(self) -> Any:
        rest = self.text[self.pos :]
        if rest[:1] in ("'", '"'):
            text, self.pos = _read_quoted(self.text, self.pos, self.fail)
            return text
        for word, constant in _CONSTANTS:
            if rest.startswith(word):
                self.pos += len(word)
                return constant
        end = self.pos
        while end < len(self.text) and (self.text[end].isdigit() or self.text[end] in "+-.eE"):
            end += 1
        token = self.text[self.pos : end]
        try:
            number: int | float = float(token) if any(c in token for c in ".eE") else int(token)
        except ValueError:
            raise self.fail(f"expected @.field or a literal at {rest!r}") from None
        self.pos = end
        return number


def _relative(path: JsonPath, item: dict[str, Any]) -> Any:
    try:
        return path.find(item)
    except PathNotFound:
        return _MISSING


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _comparison(op: str, left: _Operand, right: _Operand) -> Callable[[dict[str, Any]], bool]:
    def compare(item: dict[str, Any]) -> bool:
        a, b = left(item), right(item)
        if a is _MISSING or b is _MISSING:
            return False
        if op == "==":
            return json_equal(a, b)
        if op == "!=":
            return not json_equal(a, b)
        comparable = _both_numbers(a, b) or (isinstance(a, str) and isinstance(b, str))
        return comparable and _ORDERINGS[op](a, b)

    return compare


def _both_numbers(a: Any, b: Any) -> bool:
    return (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    )


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: booleans never equal numbers, as in JSON."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return bool(a == b)
