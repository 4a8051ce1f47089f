"""Evidence lookups for step templates, and the template's choices
(``a if c else b``, ``and`` / ``or`` / ``not``)."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import PlaybookError
from playbooks import evidence_lookups, render, sample_lookups
from tests.playbooks._helpers import log, metric


def _at(signal: Any, t: float) -> Any:
    return signal.model_copy(update={"t": t})


SIGNALS = [
    _at(metric("annotator_agreement", 0.91, annotator="ann-a"), 1),
    _at(metric("annotator_agreement", 0.88, annotator="ann-b"), 1),
    _at(metric("annotator_agreement", 0.9, annotator="ann-c"), 1),
    _at(metric("annotator_agreement", 0.93, annotator="ann-a"), 2),
    _at(metric("annotator_agreement", 0.12, annotator="ann-c"), 2),
    _at(metric("annotation_backlog", 900), 1),
    _at(metric("annotation_backlog", 14230), 2),
    _at(log("warning", "not a metric"), 3),
]


def test_lookups_pick_the_newest_lowest_and_highest_signal() -> None:
    ctx = evidence_lookups(SIGNALS)
    assert render("${lowest.annotator_agreement.annotator}", ctx) == "ann-c"
    assert render("${lowest.annotator_agreement.value}", ctx) == 0.12
    assert render("${highest.annotator_agreement.annotator}", ctx) == "ann-a"
    assert render("${latest.annotation_backlog.value}", ctx) == 14230
    assert render("${highest.annotation_backlog.value - lowest.annotation_backlog.value}", ctx) == 13330
    assert render("${has.annotation_backlog}", ctx) is True
    assert render("${has.annotation_agreement}", ctx) is False
    assert render("quarantine ${lowest.annotator_agreement.annotator} (${round(lowest.annotator_agreement.value * 100, 1)}%)", ctx) == "quarantine ann-c (12.0%)"


def test_a_metric_the_incident_does_not_show_does_not_render() -> None:
    with pytest.raises(PlaybookError, match=r"unknown name 'lowest\.annotator_outlier'"):
        render("${lowest.annotator_outlier.annotator}", evidence_lookups(SIGNALS))
    with pytest.raises(PlaybookError, match="unknown name 'lowest.annotator_agreement.team'"):
        render("${lowest.annotator_agreement.team}", evidence_lookups(SIGNALS))


def test_sample_lookups_resolve_every_name() -> None:
    ctx = sample_lookups()
    assert render("${lowest.anything.annotator}", ctx) == "example"
    assert render("${latest.anything.value * 2}", ctx) == 2.0
    assert render("${has.anything}", ctx) is True


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${'a' if has.annotation_backlog else 'b'}", "a"),
        ("${'a' if has.nothing else 'b'}", "b"),
        # The branch not taken is not evaluated: a missing metric there is fine.
        ("${latest.nothing.value if has.nothing else 0}", 0),
        ("${has.nothing and latest.nothing.value > 1}", False),
        ("${has.annotation_backlog and latest.annotation_backlog.value > 10000}", True),
        ("${has.nothing or latest.annotation_backlog.value > 10000}", True),
        ("${not has.nothing}", True),
        ("${'x' if not has.annotation_backlog or latest.annotation_backlog.value < 5 else 'y'}", "y"),
    ],
)
def test_choices(template: str, expected: Any) -> None:
    assert render(template, evidence_lookups(SIGNALS)) == expected


@pytest.mark.parametrize(
    ("template", "refusal"),
    [
        ("${'a' if latest.annotation_backlog.value else 'b'}", "if takes comparisons"),
        ("${1 and has.annotation_backlog}", "and takes comparisons"),
        ("${has.nothing or 'x'}", "or takes comparisons"),
        ("${not 3}", "not takes comparisons"),
    ],
)
def test_choices_take_only_comparisons(template: str, refusal: str) -> None:
    with pytest.raises(PlaybookError, match=refusal):
        render(template, evidence_lookups(SIGNALS))
