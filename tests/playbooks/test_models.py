"""Matchers, signatures, steps and policy entries on their own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from playbooks import PolicyEntry, SignalMatcher, Signature, Step, ValidationCheck, signal_haystack
from tests.playbooks._helpers import check, ev, log, metric
from tools import Signal


def test_kind_name_and_value() -> None:
    m = SignalMatcher(kind="metric", name=r"^dup\w*ratio$", op=">=", value=0.5)
    assert m.matches(metric("duplicate_ratio", 0.5))
    assert not m.matches(metric("duplicate_ratio", 0.49))
    assert not m.matches(metric("quarantine_ratio", 0.9))
    assert not m.matches(check("duplicate_ratio", observed=0.9))


def test_check_observed_is_compared_as_a_number() -> None:
    m = SignalMatcher(kind="check", name="null_rate", op=">", value=0.05)
    assert m.matches(check("null_rate(ts)", observed=0.41))
    assert m.matches(check("null_rate(ts)", observed="0.41"))
    assert not m.matches(check("null_rate(ts)", observed="n/a"))
    assert not m.matches(check("null_rate(ts)", observed=True))


def test_pattern_on_a_field_and_on_labels() -> None:
    by_type = SignalMatcher(kind="event", field="type", pattern="^run_succeeded$")
    assert by_type.matches(ev("run_succeeded"))
    assert not by_type.matches(ev("run_failed"))
    assert not by_type.matches(log("error", "run_succeeded"))
    by_label = SignalMatcher(kind="metric", field="labels.reason", pattern="schema", op=">=", value=5)
    assert by_label.matches(metric("records_quarantined_total", 9, reason="schema_violation"))
    assert not by_label.matches(metric("records_quarantined_total", 9, reason="decode_error"))
    assert not by_label.matches(metric("records_quarantined_total", 9))


def test_whole_text_is_case_insensitive_and_spans_lines() -> None:
    m = SignalMatcher(pattern="traceback.*memoryerror")
    assert m.matches(log("error", "Traceback (most recent call last):\n  File x\nMemoryError"))


def test_haystack_adds_what_text_leaves_out() -> None:
    e = Signal(kind="event", type="config_changed", message="oncall changed batch_size", version=3)
    assert "oncall changed batch_size" in signal_haystack(e)
    c = Signal(kind="check", name="pii_free", status="fail", labels={"field": "caption"})
    assert "field=caption" in signal_haystack(c)
    assert signal_haystack(log("error", "x")) == "log error: x"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"kind": "metric"},
        {"op": ">"},
        {"value": 1},
        {"field": "type"},
        {"field": "colour", "pattern": "x"},
        {"pattern": "("},
        {"name": "[a-"},
        {"pattern": "x", "extra": 1},
    ],
)
def test_matcher_validation(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SignalMatcher.model_validate(bad)


def test_signature_any_all_none_and_evidence_order() -> None:
    sig = Signature.model_validate(
        {
            "root_cause": "transient_error",
            "weight": 0.8,
            "description": "d",
            "all": [{"kind": "event", "field": "type", "pattern": "succeeded$"}],
            "any": [{"pattern": "timed out"}, {"pattern": "reset"}],
            "none": [{"pattern": "MemoryError"}],
        }
    )
    a, b, c = log("error", "read timed out"), ev("run_succeeded"), log("warning", "connection reset")
    assert sig.match([a, b, c]) == [a, b, c]
    assert sig.match([b, c]) == [b, c]
    assert sig.match([a, c]) is None  # no success event
    assert sig.match([b]) is None  # nothing in any
    assert sig.match([a, b, log("error", "MemoryError")]) is None


def test_signature_needs_a_positive_part() -> None:
    with pytest.raises(ValidationError, match="any or all"):
        Signature.model_validate(
            {"root_cause": "backlog", "weight": 0.5, "description": "d", "none": [{"pattern": "x"}]}
        )
    with pytest.raises(ValidationError):
        Signature.model_validate(
            {"root_cause": "backlog", "weight": 1.5, "description": "d", "any": [{"pattern": "x"}]}
        )


def test_step_and_validation_check_rules() -> None:
    assert Step(tool="retry_stage", until="ok", max_attempts=3).max_attempts == 3
    with pytest.raises(ValidationError, match="until"):
        Step(tool="retry_stage", max_attempts=3)
    with pytest.raises(ValidationError):
        ValidationCheck(check="check_passes")
    with pytest.raises(ValidationError):
        ValidationCheck(check="signal_absent")
    with pytest.raises(ValidationError):
        ValidationCheck(check="run_succeeded", name="x")
    ok = ValidationCheck.model_validate({"check": "signal_absent", "matcher": {"pattern": "OOM"}})
    assert ok.matcher is not None and ok.matcher.matches(log("error", "OOMKilled"))


def test_policy_entry_rules() -> None:
    assert PolicyEntry(root_cause="no_fault", playbook=None, decision="no_action").playbook is None
    with pytest.raises(ValidationError):
        PolicyEntry(root_cause="no_fault", playbook="escalate_only", decision="no_action")
    with pytest.raises(ValidationError):
        PolicyEntry(root_cause="backlog", playbook=None, decision="auto_fix")
