"""Renderings of a real report: JSON fits its schema, HTML is self-contained, text reads."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator

from strangler.ledger.report_queries import load_report
from strangler.report.render_html import render_html
from strangler.report.render_json import render_json
from strangler.report.render_text import layout, render_text
from strangler.report.report import Report
from strangler.report.tables import (
    AB_TITLE,
    HANDOFF_TITLE,
    PATH_TITLE,
    REPORT_TITLE,
    ROLLOUT_TITLE,
    SHADOW_TITLE,
    STEP_TITLE,
    VERDICT_TITLE,
    Table,
    ab_summary,
    ab_table,
    check_table,
    format_seconds,
    handoff_table,
    header_lines,
    path_table,
    rollout_table,
    shadow_summary,
    shadow_table,
)
from tests.unit.report.known_ledger import T0, UNTIL, build_known_ledger

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE.parents[2] / "docs" / "report.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
_SVG = re.compile(r"<svg.*?</svg>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_RULE = re.compile(r"^-+(  -+)*$", re.MULTILINE)


class _HtmlTables(HTMLParser):
    """Every ``<table>`` of a page read back as a :class:`Table` (class ``shift``: marked)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[Table] = []
        self._rows: list[list[str]] = []
        self._marked: set[tuple[int, int]] = set()
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._rows, self._marked = [], set()
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("th", "td"):
            self._cell = []
            if ("class", "shift") in attrs:
                self._marked.add((len(self._rows) - 2, len(self._rows[-1])))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            self._rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            headers, *rows = self._rows
            self.tables.append(
                Table(tuple(headers), tuple(map(tuple, rows)), frozenset(self._marked))
            )


def _html_tables(page: str) -> list[Table]:
    parser = _HtmlTables()
    parser.feed(page)
    parser.close()
    return parser.tables


@pytest.fixture(scope="module")
def report() -> Report:
    """The report of the known ledger, on in-memory SQLite."""
    engine = sa.create_engine("sqlite://")
    build_known_ledger(engine)
    try:
        return load_report(engine, since=T0, until=UNTIL, examples=1, now=UNTIL)
    finally:
        engine.dispose()


def test_schema_is_valid_and_versioned() -> None:
    """docs/report.schema.json is a valid JSON Schema whose id and version say v1."""
    Draft202012Validator.check_schema(SCHEMA)
    assert (SCHEMA["$id"].endswith("/v1.json"), SCHEMA["properties"]["schema_version"]) == (
        True,
        {"const": 1},
    )


def test_json_validates_against_the_schema(report: Report) -> None:
    """The JSON of a real report fits the published schema."""
    document = json.loads(render_json(report))
    VALIDATOR.validate(document)
    assert document["verdict"]["reasons"] == list(report.verdict.reasons)


def test_json_of_an_empty_ledger_validates() -> None:
    """A ledger with no orders still gives schema-valid JSON (nulls for missing times)."""
    engine = sa.create_engine("sqlite://")
    build_known_ledger(engine)
    try:
        document = json.loads(render_json(load_report(engine, until=T0.replace(year=2000))))
    finally:
        engine.dispose()
    VALIDATOR.validate(document)
    assert document["paths"][0]["times"]["p50"] is None


def test_html_has_no_external_references(report: Report) -> None:
    """Every src and href in the HTML is a fragment or a sidecar path, never http(s)."""
    page = render_html(report)
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page)
    assert [r for r in references if re.match(r"(?i)\s*(https?:)?//", r)] == []
    assert [u for u in re.findall(r"url\(([^)]*)\)", page) if not u.startswith("#")] == []
    assert "<script" not in page
    assert "<link" not in page
    assert page.count("<svg") == 3


def test_html_story_links_are_absolute_with_a_base_url_else_plain_text(report: Report) -> None:
    """Saved HTML works offline: an absolute story link with --base-url, else plain text."""
    plain = render_html(report)
    linked = render_html(report, base_url="https://sidecar.example:8080/")
    assert "<p class='verdict fail'>FAIL</p>" in plain
    assert "<li>S7: " in plain
    assert "<a href='/_strangler/orders/" not in plain
    assert "<a href='https://sidecar.example:8080/_strangler/orders/S7'>S7</a>" in linked


def test_a_b_differences_excluding_zero_are_highlighted(report: Report) -> None:
    """An A/B difference whose interval excludes 0 is marked in text and highlighted in HTML."""
    table = ab_table(report)
    assert sorted(table.rows[row][0] for row, _ in table.marked) == sorted(
        m for m, d in report.ab.differences.items() if d.low > 0 or d.high < 0
    )
    text = render_text(report)
    assert "* the 95 % interval excludes 0" in text


def test_an_empty_arm_reads_not_applicable() -> None:
    """With no legacy orders, each A/B difference reads n/a, not an interval."""
    engine = sa.create_engine("sqlite://")
    build_known_ledger(engine)
    try:
        empty = load_report(engine, until=T0.replace(year=2000))
    finally:
        engine.dispose()
    assert {row[3] for row in ab_table(empty).rows[:4]} == {"n/a (no instant or legacy orders)"}


def test_the_gate_step_is_the_headline_beside_the_window(report: Report) -> None:
    """The text leads with the gate's current step, then this report's window, labelled."""
    text = render_text(report, step=report)
    lines = text.splitlines()
    assert lines[3].startswith("Gate (current step, orders routed since 2030-01-01 ")
    assert lines[4].startswith("All orders in this report's window: FAIL (mismatch:fraud_scan")
    unknown = render_text(report, step_note="the rollout could not be read: no flag file")
    assert "Gate (current step): unknown: the rollout could not be read" in unknown


def test_text_tables(report: Report) -> None:
    """The text rendering has the per-path row, the shadow step row and the verdict."""
    text = render_text(report)
    assert re.search(r"^instant\s+21\s+1\s+failed 1, fulfilled 19\s+10\.0 ms", text, re.M)
    assert re.search(r"^fraud_scan\s+2/10 = 20\.00 % \[5\.67 %, 50\.98 %\]", text, re.M)
    assert "Verdict over this report's window: FAIL" in text


def html_without_charts(report: Report) -> str:
    """The HTML rendering with each chart cut to ``<svg/>`` (matplotlib's clip ids vary)."""
    return _SVG.sub("<svg/>", render_html(report))


@pytest.mark.parametrize(
    ("render", "known"),
    [
        pytest.param(render_text, "known_report.txt", id="text"),
        pytest.param(html_without_charts, "known_report.html", id="html"),
    ],
)
def test_renderings_of_the_known_report_are_unchanged(
    report: Report, render: Callable[[Report], str], known: str
) -> None:
    """Text and HTML (charts aside) are byte for byte the files beside this module.

    When a rendering changes on purpose, write the new one over the file.
    """
    assert (HERE / known).read_text(encoding="utf-8") == render(report)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0.0123, "12.3 ms"), (4.8, "4.80 s"), (900.0, "15.0 min")],
    ids=["none", "ms", "s", "min"],
)
def test_format_seconds(seconds: float | None, shown: str) -> None:
    """Times read in the unit that suits them."""
    assert format_seconds(seconds) == shown


def _empty_report() -> Report:
    engine = sa.create_engine("sqlite://")
    build_known_ledger(engine)
    try:
        return load_report(engine, until=T0.replace(year=2000))
    finally:
        engine.dispose()


@pytest.mark.parametrize("known", [True, False], ids=["known-ledger", "empty-ledger"])
def test_text_and_html_show_the_same_tables_from_one_source(report: Report, known: bool) -> None:
    """Both renderings carry exactly the tables of tables.py: same headers, rows and marks.

    The HTML's tables are read back cell by cell; each must be a table tables.py built,
    and must appear in the text laid out, with no other table in the text.
    """
    shown = report if known else _empty_report()
    built = [
        check_table(shown.verdict.checks),
        path_table(shown),
        handoff_table(shown),
        shadow_table(shown),
        ab_table(shown),
        rollout_table(shown),
        check_table(shown.verdict.checks),
    ]
    expected = sorted((t for t in built if t.rows), key=repr)
    text = render_text(shown, step=shown)
    in_html = _html_tables(render_html(shown, step=shown))
    assert expected == sorted(in_html, key=repr)
    assert [True] * len(in_html) == [layout(t) in text for t in in_html]
    assert len(in_html) == len(_RULE.findall(text))


def test_a_shifted_difference_is_marked_alike_in_text_and_html(report: Report) -> None:
    """A difference whose interval excludes 0 ends in " *" in text and is highlighted in HTML."""
    decline = dataclasses.replace(
        report.ab.differences["decline"], difference=0.05, low=0.02, high=0.09
    )
    ab = dataclasses.replace(report.ab, differences={**report.ab.differences, "decline": decline})
    shifted = dataclasses.replace(report, ab=ab)
    table = ab_table(shifted)
    assert table.marked == frozenset({(1, 3)})
    assert "+5.00 pts [+2.00, +9.00] *" in render_text(shifted)
    assert [table] == [t for t in _html_tables(render_html(shifted)) if t.headers == table.headers]


@pytest.mark.parametrize(
    ("rows", "marked", "message"),
    [
        ((("a",),), frozenset(), "has 1 cells for 2 headers"),
        ((("a", "b"),), frozenset({(1, 0)}), "lies outside the table"),
    ],
    ids=["short-row", "mark-outside"],
)
def test_a_table_refuses_a_row_or_mark_that_does_not_fit(
    rows: tuple[tuple[str, ...], ...], marked: frozenset[tuple[int, int]], message: str
) -> None:
    """A row shorter than the headers, or a mark outside the rows, is a ValueError."""
    with pytest.raises(ValueError, match=message):
        Table(("x", "y"), rows, marked)


def test_text_and_html_say_the_same_in_the_same_words(report: Report) -> None:
    """The header, every section title and the summary sentences read alike in both renderings."""
    text = render_text(report, step=report)
    shown = html.unescape(_TAG.sub("\n", render_html(report, step=report)))
    shared = [
        REPORT_TITLE,
        *header_lines(report),
        STEP_TITLE,
        PATH_TITLE,
        HANDOFF_TITLE,
        SHADOW_TITLE,
        shadow_summary(report),
        AB_TITLE,
        ab_summary(report),
        ROLLOUT_TITLE,
        VERDICT_TITLE,
    ]
    assert [line for line in shared if line not in text] == []
    assert [line for line in shared if line not in shown] == []
