"""Monitor, diagnose and decide: from signals to a gated decision."""

from __future__ import annotations

from typing import Any

import structlog
from langgraph.runtime import Runtime

from agents._diagnosis import Diagnosis, DiagnosisRequest
from agents._monitor import GENERIC, fingerprint, symptoms
from agents._state import AgentContext, IncidentState
from agents._store import IncidentRow, new_incident_id, window_start
from app.errors import LLMError, PlaybookError
from app.taxonomy import Decision, RootCause
from playbooks import Playbook
from tools import Signal
from tools._live_observe import LATE_COMMIT_S

__all__ = ["monitor", "diagnose", "decide", "signals_of"]

_log = structlog.get_logger("dataops.agents")

_STRICTNESS = [Decision.NO_ACTION, Decision.AUTO_FIX, Decision.AUTO_FIX_NOTIFY, Decision.NEEDS_APPROVAL, Decision.ESCALATE]
_RISK_W = {"low": 0.1, "medium": 0.3, "high": 0.6, "critical": 0.9}
_BLAST_W = {"record": 0.5, "batch": 0.7, "pipeline": 1.0, "dataset": 1.2, "global": 1.5}


def signals_of(state: IncidentState) -> list[Signal]:
    return [Signal.model_validate(s) for s in state.get("signals") or []]


def monitor(state: IncidentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Read new signals; open an incident on a symptom, or join the open one."""
    ctx = runtime.context
    pipeline, dataset = state["pipeline"], state.get("dataset")
    cursor = float(state.get("cursor_t") or 0.0)
    args: dict[str, Any] = {"pipeline": pipeline, "dataset": dataset, "since_t": cursor, "limit": 2000}
    event_cursor = state.get("cursor_event_id")
    recent = dict(state.get("recent_event_ids") or {})
    if event_cursor is not None:
        args |= {"after_event_id": event_cursor, "seen_event_ids": sorted(int(k) for k in recent)}
    res = ctx.tools.observe("get_signals", args)
    new = [Signal.model_validate(s) for s in (res.data or [])] if res.is_ok else []
    new = [s for s in new if str(_event_id(s)) not in recent]
    found = symptoms(new, ctx.settings)
    next_cursor = max([cursor, *(s.t for s in new)]) + 1e-3 if new else cursor
    moved: dict[str, Any] = {"cursor_t": next_cursor}
    if event_cursor is not None:
        moved |= _event_cursor(new, event_cursor, recent, next_cursor)
    if not found:
        return {"quiet": True, **moved}
    now = ctx.clock.now()
    open_row = ctx.store.open_for(pipeline, dataset, window_start(now, ctx.settings.join_window_s))
    dumped = [s.model_dump(mode="json", exclude_none=True) for s in new]
    if open_row is not None and open_row.id != state.get("incident_id"):
        known = {fingerprint(s) for s in symptoms([Signal.model_validate(x) for x in open_row.signals], ctx.settings)}
        if not (known & {fingerprint(s) for s in found}) - GENERIC:
            open_row = None  # a different problem: it gets its own incident
    if open_row is not None and open_row.id != state.get("incident_id"):
        ctx.store.append_signals(open_row.id, dumped)
        _log.info("incident_joined", incident=open_row.id, pipeline=pipeline, symptoms=len(found))
        return {"quiet": True, "joined": open_row.id, **moved}
    # The incident's evidence: everything since the last cycle, so a config
    # change just before the failures is there, and earlier incidents are not.
    signals = sorted(new, key=lambda s: s.t)
    incident_id = state.get("incident_id") or new_incident_id(now)
    ctx.store.create(
        IncidentRow(
            id=incident_id,
            pipeline=pipeline,
            dataset=dataset,
            opened_at=now,
            signals=[s.model_dump(mode="json", exclude_none=True) for s in signals],
            fault=ctx.fault,
        )
    )
    _log.info("incident_opened", incident=incident_id, pipeline=pipeline, symptoms=len(found))
    return {
        "quiet": False,
        "incident_id": incident_id,
        "opened_at": now.isoformat(),
        "opened_t": ctx.clock.t(),
        "signals": [s.model_dump(mode="json", exclude_none=True) for s in signals],
        **moved,
        "status": "open",
        "attempt": 0,
        "tried": [],
        "actions": [],
        "notes": [],
    }


def _event_id(signal: Signal) -> int | None:
    value = (signal.model_extra or {}).get("event_id")
    return int(value) if value is not None else None


def _event_cursor(new: list[Signal], after: int, recent: dict[str, float], cursor_t: float) -> dict[str, Any]:
    """The cursor past what was just read: the highest event id, and the ids
    the live backend may still show again as late commits (within
    LATE_COMMIT_S before the next read's ``since_t``), so none is read twice."""
    read = {i: s.t for s in new if (i := _event_id(s)) is not None}
    keep = cursor_t - LATE_COMMIT_S - 1.0  # a second of slack for ms rounding
    recent = {k: t for k, t in recent.items() if t >= keep} | {str(i): t for i, t in read.items()}
    return {"cursor_event_id": max([after, *read]), "recent_event_ids": dict(sorted(recent.items(), key=lambda kv: int(kv[0])))}


def diagnose(state: IncidentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    ctx = runtime.context
    from datetime import datetime

    request = DiagnosisRequest(
        incident_id=state["incident_id"],
        pipeline=state["pipeline"],
        dataset=state.get("dataset"),
        opened_at=datetime.fromisoformat(state["opened_at"]),
        signals=signals_of(state),
    )
    notes = list(state.get("notes") or [])
    diagnosis: Diagnosis | None = None
    if ctx.llm is not None:
        try:
            diagnosis = ctx.llm.diagnose(request, tools=ctx.tools, playbooks=ctx.playbooks, memory=ctx.memory)
        except LLMError as exc:
            notes.append(f"LLM diagnosis failed, offline engine used: {exc}")
    if diagnosis is None:
        diagnosis = ctx.offline.diagnose(request, tools=ctx.tools, playbooks=ctx.playbooks, memory=ctx.memory)
    ctx.store.update(
        state["incident_id"],
        root_cause=diagnosis.root_cause.value,
        confidence=diagnosis.confidence,
        summary=diagnosis.summary,
        diagnosis=diagnosis.model_dump(mode="json"),
    )
    return {"diagnosis": diagnosis.model_dump(mode="json"), "candidates": list(diagnosis.candidates), "notes": notes}


def _tighten(current: Decision, to: Decision) -> Decision:
    return to if _STRICTNESS.index(to) > _STRICTNESS.index(current) else current


def decide(state: IncidentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """The gate. Starts from the policy and only ever tightens it."""
    ctx = runtime.context
    diag = Diagnosis.model_validate(state["diagnosis"])
    tried = list(state.get("tried") or [])
    entry = ctx.playbooks.policy(diag.root_cause, state["pipeline"])
    decision = Decision(entry.decision)
    reasons = [f"policy: {diag.root_cause.value} -> {entry.playbook or 'nothing'} -> {decision.value}"]
    remaining = [c for c in (state.get("candidates") or []) if c not in tried]
    first = entry.playbook
    if diag.playbook and diag.playbook in remaining and diag.playbook != first:
        # The signature that recognised the cause belongs to this playbook: it
        # names the treatment more precisely than the root cause's default.
        first = diag.playbook
        reasons.append(f"the matching signature belongs to {first}")
    playbook = first if first and first not in tried else (remaining[0] if remaining else None)
    if tried and playbook is None:
        reasons.append("no candidate playbook left")
        decision = Decision.ESCALATE
    if playbook is not None and decision != Decision.NO_ACTION and ctx.playbooks.changes_nothing(playbook):
        # It changes nothing and validates nothing: choosing it is escalating.
        decision = _tighten(decision, Decision.ESCALATE)
    if diag.root_cause == RootCause.NO_FAULT and symptoms(signals_of(state), ctx.settings) and diag.confidence < 0.5:
        decision, playbook = Decision.ESCALATE, None
        reasons.append("failing signals but no known cause: a human looks")
    score = 0.0
    if playbook is not None and decision not in (Decision.NO_ACTION,):
        pb = ctx.playbooks.get(playbook)
        success = None
        if ctx.memory is not None:
            from agents._offline import incident_query

            success = ctx.memory.success_rate(
                incident_query(signals_of(state)),
                playbook,
                before=_parse(state["opened_at"]),
                pipeline=state["pipeline"],
            )
        rate = success[0] if success else 0.7
        score = (
            _RISK_W.get(str(pb.risk), 0.3) * _BLAST_W.get(pb.blast_radius, 1.0) * (1.0 if pb.reversible else 1.5)
            + 0.5 * (1 - diag.confidence)
            + 0.3 * (1 - rate)
        )
        reasons.append(
            f"risk {pb.risk} x blast {pb.blast_radius} x {'reversible' if pb.reversible else 'irreversible'}, "
            f"confidence {diag.confidence:.2f}, success on similar {rate:.0%}"
            + (f" (n={success[1]})" if success else " (prior)")
            + f" -> score {score:.2f}"
        )
        if decision in (Decision.AUTO_FIX, Decision.AUTO_FIX_NOTIFY):
            if diag.confidence < ctx.settings.min_confidence:
                decision = _tighten(decision, Decision.NEEDS_APPROVAL)
                reasons.append(f"confidence {diag.confidence:.2f} < {ctx.settings.min_confidence}: needs approval")
            if success and success[1] >= 2 and success[0] < ctx.settings.min_success_rate:
                decision = _tighten(decision, Decision.NEEDS_APPROVAL)
                reasons.append(f"{playbook} failed on similar incidents ({success[0]:.0%}): needs approval")
            if str(pb.risk) in ("high", "critical"):
                decision = _tighten(decision, Decision.NEEDS_APPROVAL)
                reasons.append(f"{playbook} is {pb.risk} risk: needs approval")
            if score > 0.85:
                decision = _tighten(decision, Decision.NEEDS_APPROVAL)
                reasons.append(f"risk score {score:.2f} > 0.85: needs approval")
            if ctx.tools.guardrails.is_paused(state["pipeline"]):
                decision = _tighten(decision, Decision.NEEDS_APPROVAL)
                reasons.append("auto-fix is paused (kill switch): needs approval")
            for why in _approvals(state, ctx, pb):
                decision = _tighten(decision, Decision.NEEDS_APPROVAL)
                reasons.append(f"{why}: needs approval")
    # An escalation may still run its playbook first (a rollback, a pause) —
    # but only on a diagnosis confident enough to act on.
    act_first = decision != Decision.ESCALATE or diag.confidence >= ctx.settings.min_confidence
    if not act_first and playbook not in (None, "escalate_only"):
        reasons.append(f"confidence {diag.confidence:.2f}: {playbook} waits for the human")
    first = state.get("first_decision") or decision.value
    ctx.store.update(state["incident_id"], decision=decision.value, playbook=playbook)
    return {
        "decision": decision.value,
        "first_decision": first,
        "decision_reasons": [*(state.get("decision_reasons") or []), *reasons],
        "playbook": playbook,
        "risk_score": round(score, 3),
        "act_first": act_first,
    }


def _approvals(state: IncidentState, ctx: AgentContext, pb: Playbook) -> list[str]:
    """Why steps of ``pb`` would need a human before they run (their tools'
    own approval rules, e.g. a re-enrichment over too many samples)."""
    from agents._remediate import template_context

    try:
        steps = ctx.playbooks.render_steps(pb, template_context(state, ctx))
    except PlaybookError:
        return []  # act reports what cannot render
    out = []
    for step in steps:
        why = ctx.tools.approval_needed(step.tool, {"pipeline": state["pipeline"], **step.args})
        if why:
            out.append(why)
    return out


def _parse(iso: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(iso)
