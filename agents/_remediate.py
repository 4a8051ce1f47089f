"""Act, validate, roll back, wait for a human, escalate, learn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agents._monitor import symptoms
from agents._state import AgentContext, IncidentState
from app.errors import PlaybookError
from app.taxonomy import Decision, IncidentStatus, Outcome, Pipeline, RootCause
from tools import ACTION_TOOLS, Signal, ToolStatus

__all__ = ["act", "validate", "approval", "escalate", "learn", "template_context"]

_log = structlog.get_logger("dataops.agents")


def template_context(state: IncidentState, ctx: AgentContext) -> dict[str, Any]:
    """What a playbook's step arguments are rendered with: the pipeline's
    config now, the incident, and its metrics (``latest``, ``lowest``,
    ``highest``; see :mod:`playbooks._evidence`)."""
    from playbooks import evidence_lookups

    cfg = ctx.tools.observe("get_config", {"pipeline": state["pipeline"], "dataset": state.get("dataset")})
    signals = [Signal.model_validate(s) for s in state.get("signals") or []]
    return {
        "config": (cfg.data or {}).get("values", {}) if cfg.is_ok else {},
        "pipeline": state["pipeline"],
        "dataset": state.get("dataset"),
        "incident": {"id": state["incident_id"]},
        "attempt": int(state.get("attempt") or 0) + 1,
        **evidence_lookups(signals),
    }


def act(state: IncidentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the playbook's steps through the action tools. Each step passes the
    guardrails and runs at most once per idempotency key, across restarts."""
    ctx = runtime.context
    playbook = ctx.playbooks.get(state["playbook"] or "")
    attempt = int(state.get("attempt") or 0) + 1
    actions = list(state.get("actions") or [])
    action_t = ctx.clock.t()
    if not ctx.tools.guardrails.acquire(state["pipeline"], state["incident_id"]):
        holder = ctx.tools.guardrails.holder(state["pipeline"])
        note = f"another remediation is in flight on {state['pipeline']} ({holder.incident_id if holder else '?'})"
        return {"act_ok": False, "needs_human": True, "action_t": action_t, "attempt": attempt,
                "tried": [*(state.get("tried") or []), playbook.id], "notes": [*(state.get("notes") or []), note]}
    try:
        steps = ctx.playbooks.render_steps(playbook, template_context(state, ctx))
    except PlaybookError as exc:
        ctx.tools.guardrails.release(state["pipeline"], state["incident_id"])
        return {"act_ok": False, "needs_human": False, "action_t": action_t, "attempt": attempt,
                "tried": [*(state.get("tried") or []), playbook.id],
                "notes": [*(state.get("notes") or []), f"cannot render {playbook.id}: {exc}"]}
    ok, needs_human = True, False
    # A human approved this incident: steps that ask for one may run.
    approved = bool((state.get("approval") or {}).get("approved"))
    for i, step in enumerate(steps):
        args = {"pipeline": state["pipeline"], **step.args}
        if "dataset" in ACTION_TOOLS[step.tool].args_model.model_fields and "dataset" not in args:
            args["dataset"] = state.get("dataset")
        delay = step.backoff_s
        outcome = None
        for rep in range(max(1, step.max_attempts)):
            key = f"{state['incident_id']}:{attempt}:{playbook.id}:{i}:{rep}"
            outcome = ctx.tools.act(step.tool, args, incident_id=state["incident_id"], idempotency_key=key,
                                    approved=approved)
            actions.append(
                {
                    "playbook": playbook.id,
                    "attempt": attempt,
                    "step": i,
                    "tool": step.tool,
                    "args": args,
                    "status": str(outcome.result.status),
                    "error": outcome.result.error,
                    "inverse": outcome.inverse.model_dump() if outcome.inverse else None,
                    "key": key,
                    "t": ctx.clock.t(),
                }
            )
            if outcome.result.is_ok or outcome.result.status == ToolStatus.APPROVAL_REQUIRED or step.until != "ok":
                break
            ctx.clock.sleep(delay)
            delay *= step.backoff_factor
        assert outcome is not None
        if outcome.result.status == ToolStatus.APPROVAL_REQUIRED:
            ok, needs_human = False, True
            break
        if not outcome.result.is_ok and step.on_error == "abort":
            ok = False
            break
    ctx.store.update(state["incident_id"], actions=actions, playbook=playbook.id)
    return {
        "actions": actions,
        "attempt": attempt,
        "tried": [*(state.get("tried") or []), playbook.id],
        "action_t": action_t,
        "act_ok": ok,
        "needs_human": needs_human,
    }


def _check(state: IncidentState, ctx: AgentContext, check: Any, since_t: float) -> tuple[bool, str]:
    scope = {"pipeline": state["pipeline"], "dataset": state.get("dataset")}
    if check.check == "run_succeeded":
        res = ctx.tools.observe("run_status", scope)
        ok = res.is_ok and (res.data or {}).get("status") == "succeeded"
        return ok, f"latest run {(res.data or {}).get('status', res.status)}"
    if check.check == "check_passes":
        res = ctx.tools.observe("get_checks", scope)
        found = [c for c in (res.data or []) if c.get("name") == check.name] if res.is_ok else []
        ok = bool(found) and all(c.get("status") == "pass" for c in found)
        return ok, f"check {check.name}: {found[0].get('status') if found else 'not found'}"
    res = ctx.tools.observe("get_signals", {**scope, "since_t": since_t, "limit": 2000})
    new = [Signal.model_validate(s) for s in (res.data or [])] if res.is_ok else []
    if check.check == "signal_absent":
        hits = [s for s in new if check.matcher is not None and check.matcher.matches(s)]
        return not hits, f"{len(hits)} matching signals since the fix"
    bad = symptoms(new, ctx.settings)
    return not bad, (f"{len(bad)} failing signals since the fix: {bad[0].text()}" if bad else "no failing signals")


def validate(state: IncidentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Re-read the world until every check holds or the window closes; on
    failure undo what was done (recorded inverses, newest first)."""
    ctx = runtime.context
    if state.get("needs_human"):
        return {"validation": {"ok": False, "details": ["an action needs a human"]}}
    playbook = ctx.playbooks.get(state["playbook"] or "")
    since = float(state.get("action_t") or 0.0)
    timeout = min(playbook.validate_timeout_s, ctx.settings.validate_timeout_s)
    deadline = ctx.clock.t() + timeout
    details: list[str] = []
    ok = bool(state.get("act_ok"))
    while ok:
        results = [_check(state, ctx, c, since) for c in playbook.validation]
        details = [d for _, d in results]
        if all(r for r, _ in results):
            break
        if ctx.clock.t() >= deadline:
            ok = False
            break
        ctx.clock.sleep(ctx.settings.validate_poll_s)
    if not state.get("act_ok"):
        details.append("a step failed")
    actions = list(state.get("actions") or [])
    if not ok:
        actions = _rollback(state, ctx, actions)
    # The remediation is over either way; waiting for a human holds no lock.
    ctx.tools.guardrails.release(state["pipeline"], state["incident_id"])
    result: dict[str, Any] = {"validation": {"ok": ok, "details": details}, "actions": actions}
    if ok:
        result["resolved_t"] = ctx.clock.t()
    return result


def _rollback(state: IncidentState, ctx: AgentContext, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    attempt = int(state.get("attempt") or 0)
    done = [a for a in actions if a.get("attempt") == attempt and a.get("inverse") and a["status"] == "ok"]
    for n, a in enumerate(reversed(done)):
        inv = a["inverse"]
        key = f"{a['key']}:undo"
        out = ctx.tools.act(inv["tool"], inv["args"], incident_id=state["incident_id"], idempotency_key=key, undo=True)
        actions.append(
            {"playbook": a["playbook"], "attempt": attempt, "step": f"undo-{n}", "tool": inv["tool"], "args": inv["args"],
             "status": str(out.result.status), "error": out.result.error, "inverse": None, "key": key, "rollback": True,
             "t": ctx.clock.t()}
        )
    ctx.store.update(state["incident_id"], actions=actions)
    return actions


def approval(state: IncidentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Wait for a human (graph interrupt); resumed by approve / reject."""
    ctx = runtime.context
    ctx.store.update(state["incident_id"], status=IncidentStatus.PENDING_APPROVAL.value)
    answer = interrupt(
        {"incident_id": state["incident_id"], "kind": "approval", "playbook": state.get("playbook"),
         "reasons": state.get("decision_reasons")}
    )
    approved = bool((answer or {}).get("approved"))
    ctx.store.update(state["incident_id"], status="open")
    return {"approval": dict(answer or {}), "status": "open" if approved else IncidentStatus.REJECTED.value}


def escalate(state: IncidentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Tell people, then wait for one of them to take it."""
    ctx = runtime.context
    diag = state.get("diagnosis") or {}
    msg = (
        f"[{state['incident_id']}] {state['pipeline']}: {diag.get('root_cause')} "
        f"(confidence {diag.get('confidence')}) — {diag.get('summary', '')}. "
        f"Done so far: {', '.join(a['tool'] for a in state.get('actions') or []) or 'nothing'}."
    )
    key = f"{state['incident_id']}:escalate"
    ctx.tools.act("notify", {"pipeline": state["pipeline"], "message": msg, "severity": "critical"},
                  incident_id=state["incident_id"], idempotency_key=key)
    ctx.store.update(state["incident_id"], status=IncidentStatus.ESCALATED.value)
    answer = interrupt({"incident_id": state["incident_id"], "kind": "escalation", "message": msg})
    closed = bool((answer or {}).get("approved"))
    return {"approval": dict(answer or {}), "status": IncidentStatus.RESOLVED.value if closed else IncidentStatus.REJECTED.value}


def learn(state: IncidentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Close the incident in the DB and remember it, with its outcome."""
    ctx = runtime.context
    decision = state.get("decision")
    validation = state.get("validation") or {}
    status = state.get("status") or "open"
    if status == "open":
        if decision == Decision.NO_ACTION.value:
            status = IncidentStatus.RESOLVED.value
        else:
            status = IncidentStatus.RESOLVED.value if validation.get("ok") else IncidentStatus.FAILED.value
    opened_t = float(state.get("opened_t") or 0.0)
    resolved_t = state.get("resolved_t")
    seconds = round(float(resolved_t) - opened_t, 3) if resolved_t is not None and status == "resolved" else None
    ctx.tools.guardrails.release(state["pipeline"], state["incident_id"])
    ctx.store.update(state["incident_id"], status=status, closed_at=ctx.clock.now(), seconds_to_resolve=seconds,
                     notes=list(state.get("notes") or []))
    if ctx.memory is not None:
        _remember(state, ctx, status, seconds)
    _log.info("incident_closed", incident=state["incident_id"], status=status, playbook=state.get("playbook"))
    return {"status": status}


def _remember(state: IncidentState, ctx: AgentContext, status: str, seconds: float | None) -> None:
    from agents._offline import incident_query
    from knowledge_base import IncidentRecord

    diag = state.get("diagnosis") or {}
    outcome = {
        "resolved": Outcome.RESOLVED,
        "failed": Outcome.FAILED,
        "escalated": Outcome.ESCALATED,
        "rejected": Outcome.ESCALATED,
    }.get(status, Outcome.FAILED)
    if state.get("decision") == Decision.NO_ACTION.value:
        outcome = Outcome.NO_ACTION
    assert ctx.memory is not None
    signals = [Signal.model_validate(s) for s in state.get("signals") or []]
    ctx.memory.record(
        IncidentRecord(
            id=state["incident_id"],
            pipeline=Pipeline(state["pipeline"]),
            opened_at=datetime.fromisoformat(state["opened_at"]),
            title=f"{diag.get('root_cause', 'unknown')} in {state['pipeline']}",
            symptoms=incident_query(signals),
            root_cause=RootCause(diag.get("root_cause", RootCause.NO_FAULT.value)),
            playbook=state.get("playbook"),
            decision=Decision(state.get("first_decision") or Decision.ESCALATE.value),
            outcome=outcome,
            resolution="; ".join((state.get("validation") or {}).get("details", [])),
            seconds_to_resolve=seconds,
            source=ctx.memory_source,  # type: ignore[arg-type]
        )
    )
