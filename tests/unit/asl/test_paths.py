"""JSONPath subset: what each form selects, how misses are worded, and ResultPath writes."""

from __future__ import annotations

from typing import Any

import pytest

from strangler.instant.asl.errors import EvaluationError, PathNotFound
from strangler.instant.asl.paths import PathSyntaxError, compile_path, set_at

DATA: dict[str, Any] = {
    "foo": 123,
    "bar": ["a", "b", "c"],
    "car": {"cdr": True, "dest-code": 9511},
    "jar": [{"a": 1}, {"a": 5}, {"a": 2}, {"a": 7, "b": "x"}, {"a": 3}],
    "odd key": {"it's": "quoted"},
    "empty": [],
    "nothing": None,
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DATA),
        ("$.foo", 123),
        ("$.bar", ["a", "b", "c"]),
        ("$.car.cdr", True),
        ("$.car.dest-code", 9511),
        ("$['car']['cdr']", True),
        ('$["car"]["cdr"]', True),
        ("$['odd key']['it\\'s']", "quoted"),
        ("$.bar[0]", "a"),
        ("$.bar[-1]", "c"),
        ("$.jar[3].b", "x"),
        ("$.nothing", None),
        ("$.bar.length()", 3),
        ("$.car.length()", 2),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_definite_paths_select_one_value(path: str, expected: Any) -> None:
    """A path of fields and indexes selects exactly the value it names."""
    compiled = compile_path(path)
    assert compiled.definite
    assert expected == compiled.find(DATA)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.jar[?(@.a >= 5)]", [{"a": 5}, {"a": 7, "b": "x"}]),
        ("$.jar[?(@.a > 1 && @.a < 5)].a", [2, 3]),
        ("$.jar[?(@.a == 1 || @.b == 'x')].a", [1, 7]),
        ("$.jar[?(!(@.a < 7))].a", [7]),
        ("$.jar[?(@.b)].a", [7]),
        ("$.jar[?(@.a != 5)].a", [1, 2, 7, 3]),
        ("$.jar[*].a", [1, 5, 2, 7, 3]),
        ("$.bar[*]", ["a", "b", "c"]),
        ("$.car.*", [True, 9511]),
        ("$.bar[0:2]", ["a", "b"]),
        ("$.bar[1:]", ["b", "c"]),
        ("$.bar[-2:]", ["b", "c"]),
        ("$.bar[::2]", ["a", "c"]),
        ("$.bar[0,2]", ["a", "c"]),
        ("$['foo','car']", [123, {"cdr": True, "dest-code": 9511}]),
        ("$..cdr", [True]),
        ("$..b", ["x"]),
        ("$.jar[*].missing", []),
        ("$.empty[*]", []),
        ("$.jar.length()", 5),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_indefinite_paths_select_a_list(path: str, expected: Any) -> None:
    """Wildcards, slices, unions, filters and deep scans select a (possibly empty) list."""
    assert expected == compile_path(path).find(DATA)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.nope", "No results for path: $['nope']"),
        ("$.car.nope", "No results for path: $['car']['nope']"),
        ("$.no.such.path", "Missing property in path $['no']"),
        ("$.bar[7]", "No results for path: $['bar'][7]"),
        (
            "$.foo.bar",
            "Expected to find an object with property ['bar'] in path $['foo'] but found 'number'",
        ),
        (
            "$.car[0]",
            "Expected to find an array with index [0] in path $['car'] but found 'object'",
        ),
    ],
    ids=lambda value: value if value.startswith("$") else None,
)
def test_definite_misses_are_worded_like_jayway(path: str, message: str) -> None:
    """A definite path that matches nothing raises PathNotFound (States.Runtime)."""
    with pytest.raises(PathNotFound) as caught:
        compile_path(path).find(DATA)
    assert message == caught.value.detail
    assert caught.value.error == "States.Runtime"


def test_context_paths_read_the_scope() -> None:
    """A path starting with $$ reads the context object instead of the data."""

    class Scope:
        def context(self) -> Any:
            return {"Execution": {"Name": "run-1"}}

    path = compile_path("$$.Execution.Name")
    assert path.from_context
    assert path.find({"Execution": "data"}, Scope()) == "run-1"


@pytest.mark.parametrize(
    "path",
    [
        "foo",
        "$.",
        "$.a..",
        "$[",
        "$.a[1:2:0]",
        "$.a[x]",
        "$.a.b c",
        "$.a['unclosed]",
        "$.a.keys()",
        "$.a.length().b",
        "$.a[?(@.b > )]",
        "$.a[?(1)]",
        "$.a[?(@.b == 1]",
    ],
)
def test_malformed_paths_are_rejected(path: str) -> None:
    """Syntax errors are caught when the path is compiled, not when it runs."""
    with pytest.raises(PathSyntaxError, match="path"):
        compile_path(path)


def test_context_is_refused_where_not_allowed() -> None:
    """ResultPath-like fields may not point into the context object."""
    with pytest.raises(PathSyntaxError, match="context object"):
        compile_path("$$.Execution", allow_context=False)


@pytest.mark.parametrize(
    ("path", "root", "expected"),
    [
        ("$", {"a": 1}, "R"),
        ("$.r", {"a": 1}, {"a": 1, "r": "R"}),
        ("$.a", {"a": 1}, {"a": "R"}),
        ("$.x.y.z", {"a": 1}, {"a": 1, "x": {"y": {"z": "R"}}}),
        ("$.car.new", {"car": {"cdr": 1}}, {"car": {"cdr": 1, "new": "R"}}),
    ],
    ids=["root", "new field", "replace", "create on the way", "nested"],
)
def test_set_at_writes_a_copy(path: str, root: dict[str, Any], expected: Any) -> None:
    """ResultPath writes into a copy of the input, creating missing objects."""
    before = repr(root)
    assert expected == set_at(compile_path(path), root, "R")
    assert before == repr(root)


@pytest.mark.parametrize(
    ("path", "root"),
    [("$.a", [1, 2]), ("$.a.b", {"a": 5}), ("$.a.b", {"a": [1]})],
    ids=["root is an array", "field is a number", "field is an array"],
)
def test_set_at_refuses_non_objects(path: str, root: Any) -> None:
    """Writing below something that is not an object is States.ResultPathMatchFailure."""
    with pytest.raises(EvaluationError) as caught:
        set_at(compile_path(path), root, "R")
    assert caught.value.error == "States.ResultPathMatchFailure"
