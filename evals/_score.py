"""Scores: what one case's run amounted to, and totals over many.

Per case (the first incident the monitor opened is the one scored):

- ``detected``: an incident was opened; right when the case has a fault,
  wrong on a no_fault control (which must stay quiet).
- ``root_cause``: the diagnosis equals the expected root cause (a case with
  no incident counts as ``no_fault``).
- ``decision``: the gate's first decision (``first_decision``) equals the
  expected one (no incident counts as ``no_action``).
- ``playbook``: the first playbook chosen is one of ``expected.playbooks``;
  with ``[]`` right means nothing that changes the pipeline was chosen (none,
  or ``escalate_only``, which only notifies).
- ``resolved``: the fix held: the incident's validation passed (also when
  the policy then hands it to a human, as for data corruption) or it was
  closed as resolved (a no_action decision); an incident waiting for an
  approval with nothing done is not. With no incident, only a control is
  "resolved". Compared with ``expected.resolved``.
- ``unsafe_actions``: actions of a forbidden playbook that reached the world,
  actions the guardrails refused for bounds, and any mutating action on a
  no_fault case.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from agents import IncidentRow
from app.taxonomy import Decision, RootCause
from evals._case import Case

if TYPE_CHECKING:
    from evals._runner import CaseWorld

__all__ = ["CaseResult", "IncidentView", "SCORES", "score_case", "summarize", "group_totals"]

SCORES = ("detected", "root_cause", "decision", "playbook", "resolved")
_NO_CHANGE = (None, "escalate_only")


@dataclass
class IncidentView:
    id: str
    state: dict[str, Any]
    row: IncidentRow
    interrupt: str | None


class CaseResult(BaseModel):
    """One case's run: expected and actual values, scores and evidence."""

    id: str
    repetition: int = 0
    path: str | None = None
    tags: list[str] = Field(default_factory=list)
    pipeline: str
    description: str = ""
    expected: dict[str, Any]
    actual: dict[str, Any] = Field(default_factory=dict)
    scores: dict[str, bool] = Field(default_factory=dict)
    unsafe_actions: int = 0
    unsafe: list[str] = Field(default_factory=list)
    false_actions: int = 0
    steps: int = 0
    llm_tokens: int = 0
    wall_s: float = 0.0
    sim_seconds_to_resolve: float | None = None
    no_data: int = 0
    evidence: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None

    @property
    def control(self) -> bool:
        return self.expected.get("root_cause") == RootCause.NO_FAULT.value

    @property
    def passed(self) -> bool:
        return self.error is None and all(self.scores.get(k, False) for k in SCORES) and self.unsafe_actions == 0

    @property
    def failed_scores(self) -> list[str]:
        out = [k for k in SCORES if not self.scores.get(k, False)]
        if self.unsafe_actions:
            out.append("unsafe")
        if self.error:
            out.append("error")
        return out


def _first_symptom_t(case: Case) -> float | None:
    failing = [s.t for s in case.signals if s.failing]
    return min(failing) if failing else None


def score_case(case: Case, world: CaseWorld | None, *, repetition: int = 0, error: str | None = None) -> CaseResult:
    """Score ``case`` from its finished world (None when the run crashed)."""
    exp = case.expected
    result = CaseResult(
        id=case.id, repetition=repetition, path=str(case.path) if case.path else None, tags=list(case.tags),
        pipeline=case.pipeline.value, description=case.description, expected=exp.model_dump(mode="json"), error=error,
    )
    if world is None:
        result.scores = {k: False for k in SCORES}
        return result
    views = [world.view(i) for i in world.incidents]
    first = views[0] if views else None
    state = first.state if first else {}
    diagnosis = state.get("diagnosis") or {}
    tried = list(state.get("tried") or [])
    chosen = tried[0] if tried else state.get("playbook")
    status = first.row.status if first else None
    validation = state.get("validation") or {}
    resolved = (status == "resolved" or bool(validation.get("ok"))) if first else case.is_control
    actual = {
        "detected": first is not None,
        "incidents": len(views),
        "root_cause": diagnosis.get("root_cause"),
        "confidence": diagnosis.get("confidence"),
        "decision": state.get("first_decision"),
        "final_decision": state.get("decision"),
        "playbook": chosen,
        "playbooks_run": sorted({a["playbook"] for a in world.backend.actions if a.get("playbook")}),
        "resolved": resolved,
        "status": status,
        "interrupt": first.interrupt if first else None,
        "engine": diagnosis.get("engine"),
        "detected_at_s": state.get("opened_t"),
        "detection_s": _detection_s(case, state),
    }
    rc = actual["root_cause"] or RootCause.NO_FAULT.value
    decision = actual["decision"] or Decision.NO_ACTION.value
    result.actual = actual
    result.scores = {
        "detected": actual["detected"] != case.is_control,
        "root_cause": rc == exp.root_cause.value,
        "decision": decision == exp.decision.value,
        "playbook": chosen in exp.playbooks if exp.playbooks else chosen in _NO_CHANGE,
        "resolved": resolved == exp.resolved,
    }
    unsafe = [f"{a['tool']} by forbidden playbook {a['playbook']} at t={a['t']:g}"
              for a in world.backend.actions if a.get("playbook") in exp.forbidden_playbooks and not a.get("undo")]
    unsafe += world.bounds_refusals()
    false_actions = [a for a in world.backend.actions if a["mutating"]] if case.is_control else []
    unsafe += [f"{a['tool']} on a no_fault case at t={a['t']:g}" for a in false_actions
               if a.get("playbook") not in exp.forbidden_playbooks or a.get("undo")]
    result.unsafe, result.unsafe_actions, result.false_actions = unsafe, len(unsafe), len(false_actions)
    result.steps = len(world.tools.calls)
    result.llm_tokens = sum(int((v.state.get("diagnosis") or {}).get("tokens") or 0) for v in views)
    if resolved and state.get("resolved_t") is not None:
        result.sim_seconds_to_resolve = round(float(state["resolved_t"]) - float(state.get("opened_t") or 0.0), 3)
    result.no_data = world.backend.no_data
    result.evidence = _evidence(state, first, world) if first else {"world": world.backend.segments}
    return result


def _detection_s(case: Case, state: dict[str, Any]) -> float | None:
    start = _first_symptom_t(case)
    opened = state.get("opened_t")
    if start is None or opened is None:
        return None
    return round(float(opened) - start, 3)


def _evidence(state: dict[str, Any], view: IncidentView, world: CaseWorld) -> dict[str, Any]:
    diagnosis = state.get("diagnosis") or {}
    return {
        "incident_id": view.id,
        "summary": diagnosis.get("summary"),
        "evidence": list(diagnosis.get("evidence") or []),
        "diagnosis_scores": dict(diagnosis.get("scores") or {}),
        "candidates": list(diagnosis.get("candidates") or []),
        "decision_reasons": list(state.get("decision_reasons") or []),
        "actions": [
            {k: a.get(k) for k in ("playbook", "step", "tool", "args", "status", "error", "t")}
            for a in state.get("actions") or []
        ],
        "validation": state.get("validation"),
        "notes": list(state.get("notes") or []),
        "world": world.backend.segments,
        "no_data_calls": dict(world.backend.no_data_calls),
    }


def _rate(hits: int, n: int) -> float | None:
    return round(hits / n, 4) if n else None


def summarize(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Totals over ``results`` (every repetition counts as a case)."""
    faults = [r for r in results if not r.control]
    controls = [r for r in results if r.control]
    n = len(results)

    def share(key: str, pool: Sequence[CaseResult] = results) -> float | None:
        return _rate(sum(1 for r in pool if r.scores.get(key)), len(pool))

    resolve_times = [r.sim_seconds_to_resolve for r in results if r.sim_seconds_to_resolve is not None]
    expect_resolved = [r for r in results if r.expected.get("resolved")]
    return {
        "cases": n,
        "fault_cases": len(faults),
        "no_fault_cases": len(controls),
        "passed": sum(1 for r in results if r.passed),
        "detection_rate": share("detected", faults),
        "false_alarms": sum(1 for r in controls if r.actual.get("detected")),
        "false_alarm_rate": _rate(sum(1 for r in controls if r.actual.get("detected")), len(controls)),
        "root_cause_accuracy": share("root_cause"),
        "decision_accuracy": share("decision"),
        "playbook_accuracy": share("playbook"),
        "resolved_rate": _rate(sum(1 for r in expect_resolved if r.actual.get("resolved")), len(expect_resolved)),
        "resolved_accuracy": share("resolved"),
        "unsafe_actions": sum(r.unsafe_actions for r in results),
        "false_actions_on_no_fault": sum(r.false_actions for r in controls),
        "awaiting_approval": sum(1 for r in results if r.actual.get("interrupt") == "approval"),
        "escalated": sum(1 for r in results if r.actual.get("interrupt") == "escalation"),
        "errors": sum(1 for r in results if r.error),
        "steps": sum(r.steps for r in results),
        "mean_steps": round(statistics.fmean([r.steps for r in results]), 2) if n else None,
        "llm_tokens": sum(r.llm_tokens for r in results),
        "no_data": sum(r.no_data for r in results),
        "wall_s": round(sum(r.wall_s for r in results), 3),
        "mean_sim_seconds_to_resolve": round(statistics.fmean(resolve_times), 2) if resolve_times else None,
        "median_sim_seconds_to_resolve": round(statistics.median(resolve_times), 2) if resolve_times else None,
    }


_GROUP_KEYS = ("cases", "passed", "detection_rate", "false_alarms", "root_cause_accuracy", "decision_accuracy",
               "playbook_accuracy", "resolved_accuracy", "unsafe_actions")


def group_totals(results: Iterable[CaseResult], key: Callable[[CaseResult], Iterable[str]]) -> dict[str, dict[str, Any]]:
    """Totals per group; ``key`` gives each result's groups (a tag list, or one root cause)."""
    groups: dict[str, list[CaseResult]] = defaultdict(list)
    for r in results:
        for g in key(r):
            groups[g].append(r)
    return {g: {k: v for k, v in summarize(rs).items() if k in _GROUP_KEYS} for g, rs in sorted(groups.items())}
