"""Annotation and enrichment in the replay world: the new tools' replies, a
re-enrichment that asks for a human above its limit, error counts that clear
on recovery, and shipped cases driven end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents import SimClock
from evals import ReplayHarness, RunOptions, load_cases, parse_case
from tools import ReplayBackend, ToolCall

CASES = Path(__file__).resolve().parents[2] / "evals" / "cases"


def _enrichment_case(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "stale-vectors",
        "pipeline": "enrichment",
        "started_at": "2026-02-04T09:00:00Z",
        "config": {"embedding_model_version": 2},
        "signals": [
            {"t": 0, "kind": "event", "type": "run_started", "run_id": "r-1"},
            {"t": 30, "kind": "event", "type": "run_succeeded", "run_id": "r-1", "read": 48200, "accepted": 48200},
            {"t": 30, "kind": "metric", "name": "enrichment_model_errors", "labels": {"model": "clip"}, "value": 12},
            {"t": 31, "kind": "check", "name": "embedding_model_current", "status": "fail", "observed": 48200,
             "expected": 0},
        ],
        "outcomes": {"reenrich": "recovered", "default": "still_failing"},
        "expected": {"root_cause": "model_degradation", "decision": "needs_approval", "playbooks": ["reenrich"],
                     "resolved": False},
    }
    data.update(changes)
    return data


def _call(backend: ReplayBackend, tool: str, **args: Any) -> Any:
    return backend.handle(ToolCall(tool=tool, args={"pipeline": backend.pipeline, **args}, incident_id="inc-1"))


def test_replayed_enrichment_tools() -> None:
    from agents import config_models

    case = parse_case(_enrichment_case())
    clock = SimClock(start=case.started_at)
    backend = ReplayBackend(case, clock, config_model=config_models()["enrichment"])
    clock.sleep(40)
    scope = _call(backend, "reenrich_scope")
    assert scope.is_ok and scope.data["samples"] == 48200
    fell = _call(backend, "fallback_model", kind="embedding")
    assert fell.is_ok and (fell.data["version"], fell.data["previous_version"]) == (1, 2)
    values = _call(backend, "get_config").data["values"]
    assert values["embedding_model_version"] == 1 and values["label_model_version"] == 2
    # Version 1 has nothing before it.
    again = _call(backend, "fallback_model", kind="embedding")
    assert not again.is_ok and "no embedding version before 1" in (again.error or "")
    assert _call(backend, "fallback_model", kind="labeler").data["previous_version"] == 2


def test_replayed_annotation_tools_show_in_the_world() -> None:
    case = parse_case(_enrichment_case(pipeline="annotation", config={}))
    clock = SimClock(start=case.started_at)
    backend = ReplayBackend(case, clock)
    clock.sleep(40)
    assert _call(backend, "quarantine_annotator", annotator="vendor-b-017").data["annotator"] == "vendor-b-017"
    assert _call(backend, "release_annotator", annotator="vendor-b-017").is_ok
    events = [s for s in backend.visible() if s.kind == "event" and s.type and "annotator" in s.type]
    assert [(s.type, (s.model_extra or {}).get("annotator")) for s in events] == [
        ("annotator_quarantined", "vendor-b-017"),
        ("annotator_released", "vendor-b-017"),
    ]


def test_recovery_clears_error_counts() -> None:
    case = parse_case(_enrichment_case())
    clock = SimClock(start=case.started_at)
    backend = ReplayBackend(case, clock, recovery_delay_s=2.0)
    clock.sleep(40)
    backend.handle(ToolCall(tool="reenrich", args={"pipeline": "enrichment"}, idempotency_key="inc-1:1:reenrich:0:0"))
    clock.sleep(5)
    after = [s for s in backend.visible() if s.t > 40 and s.kind == "metric"]
    assert [(s.name, s.value) for s in after] == [("enrichment_model_errors", 0.0)]


@pytest.fixture(scope="module")
def harness() -> Any:
    with ReplayHarness(RunOptions(memory=False)) as h:
        yield h


def test_a_large_reenrichment_waits_for_a_human(harness: ReplayHarness) -> None:
    big = parse_case(_enrichment_case())
    result = harness.run_case(big)
    assert result.passed, result.failed_scores
    assert result.actual["decision"] == "needs_approval" and result.actual["interrupt"] == "approval"
    reasons = " ".join(result.evidence["decision_reasons"])
    assert "reenrich would touch 48,200 samples, more than reenrich_approval_above=10,000" in reasons
    assert result.evidence["actions"] == []  # nothing ran before the approval


def test_a_small_reenrichment_runs_alone(harness: ReplayHarness) -> None:
    small = parse_case(_enrichment_case(
        id="stale-vectors-small", config={"embedding_model_version": 2, "reenrich_approval_above": 50000},
        expected={"root_cause": "model_degradation", "decision": "auto_fix_notify", "playbooks": ["reenrich"],
                  "resolved": True},
    ))
    result = harness.run_case(small)
    assert result.passed, result.failed_scores
    assert [a["tool"] for a in result.evidence["actions"]] == ["reenrich", "notify"]


def test_shipped_cases_take_their_arguments_from_the_evidence(harness: ReplayHarness) -> None:
    cases = {c.id: c for c in load_cases([CASES / "annotation", CASES / "enrichment"])}
    assert sum(1 for c in cases.values() if c.pipeline == "annotation") >= 15
    assert sum(1 for c in cases.values() if c.pipeline == "enrichment") >= 15
    spam = harness.run_case(cases["annotation-adversarial-instruction-in-task-comment"])
    assert spam.passed
    quarantine = spam.evidence["actions"][0]
    assert quarantine["tool"] == "quarantine_annotator" and quarantine["args"]["annotator"] == "crowd-5599"
    labeler = harness.run_case(cases["enrichment-model-labeler-raises"])
    assert labeler.passed and labeler.evidence["actions"][0]["args"]["kind"] == "labeler"
    backlog = harness.run_case(cases["annotation-backlog-surge-forecast"])
    assert backlog.passed and backlog.actual["interrupt"] == "escalation"
    assert "14230 tasks" in backlog.evidence["summary"] and "120.6 h" in backlog.evidence["summary"]



def test_an_approved_reenrichment_runs(harness: ReplayHarness) -> None:
    from langgraph.types import Command

    with harness.world(parse_case(_enrichment_case(id="stale-vectors-approved"))) as world:
        harness.drive(world)
        (incident,) = world.incidents
        assert world.view(incident).interrupt == "approval"
        assert not [a for a in world.backend.actions if a["tool"] == "reenrich"]
        config = {"configurable": {"thread_id": incident}}
        world.graph.invoke(Command(resume={"approved": True, "by": "alice"}), config, context=world.context)
        ran = [a for a in world.backend.actions if a["tool"] == "reenrich"]
        assert len(ran) == 1 and ran[0]["playbook"] == "reenrich"
        assert world.store.get(incident).status == "resolved"
