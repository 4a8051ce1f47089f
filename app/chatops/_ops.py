"""The reference :class:`~app.chatops.OpsBackend` over the real system: the
runtime, the incident store, the supervisor (approve / reject resume its
graph), the guardrails kill switch and pipeline pause state, the jobs the
supervisor watches, and incident memory."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal

from sqlmodel import Session, col, select

from app.chatops._ask import compose_answer
from app.errors import InputError
from app.taxonomy import Pipeline
from guardrails import AuditVerdict
from pipelines.runtime import Job, RunRow, Runtime

if TYPE_CHECKING:
    from agents import IncidentRow, Supervisor
    from agents.llm import ChatBackend
    from knowledge_base import IncidentMemory

__all__ = ["RuntimeOpsBackend"]

_RECENT = 50
_AUDIT_TRAIL = 50


class RuntimeOpsBackend:
    """Operations through our own components. ``supervisor`` is the live
    :class:`~agents.Supervisor` (or a callable returning it). ``memory``
    defaults to the supervisor's, else the configured one, opened on the
    first question; ``chat`` to the supervisor's LLM (``"auto"``) — pass
    None for no LLM. ``lock`` is held around approve and reject."""

    def __init__(
        self,
        rt: Runtime,
        supervisor: Supervisor | Callable[[], Supervisor],
        *,
        memory: IncidentMemory | None = None,
        chat: ChatBackend | None | Literal["auto"] = "auto",
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.rt = rt
        self._supervisor = supervisor
        self._memory = memory
        self._own_memory: IncidentMemory | None = None
        self._chat = chat
        # One graph resume at a time, so a double click acts once; share the
        # daemon's lock to keep resumes apart from its monitor cycles too.
        self._answers: AbstractContextManager[Any] = lock if lock is not None else threading.Lock()
        self._runs: dict[str, threading.Lock] = {}
        self._runs_lock = threading.Lock()

    def _sup(self) -> Supervisor:
        from agents import Supervisor

        sup = self._supervisor
        return sup if isinstance(sup, Supervisor) else sup()

    # -- reading -------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        sup = self._sup()
        switches = sup.guardrails.kill_switches()
        everywhere = next((s for s in switches if s.scope == "*" and s.paused), None)
        autofix: dict[str, Any] = {
            "paused": everywhere is not None,
            "paused_pipelines": [s.scope for s in switches if s.paused and s.scope != "*"],
        }
        if everywhere is not None:
            autofix.update(by=everywhere.by, reason=everywhere.reason)
        pipelines = [
            {
                "pipeline": job.pipeline,
                "dataset": job.dataset,
                "paused": self.rt.control.is_paused(job.pipeline, job.dataset),
                "autofix_paused": sup.guardrails.is_paused(job.pipeline),
                "last_run": self._last_run(job.pipeline, job.dataset),
            }
            for job in sup.jobs.values()
        ]
        open_rows = sup.store.recent(status="open", limit=_RECENT)
        return {"autofix": autofix, "pipelines": pipelines, "open_incidents": [_summary(r) for r in open_rows]}

    def _last_run(self, pipeline: str, dataset: str) -> dict[str, Any] | None:
        q = (
            select(RunRow)
            .where(RunRow.pipeline == pipeline, RunRow.dataset == dataset)
            .order_by(col(RunRow.created_at).desc())
            .limit(1)
        )
        with Session(self.rt.engine) as s:
            run = s.exec(q).first()
        if run is None:
            return None
        return {
            "id": run.id,
            "status": run.status,
            "read": run.read,
            "accepted": run.accepted,
            "duplicates": run.duplicates,
            "quarantined": run.quarantined,
            "ended_at": run.ended_at.isoformat() if run.ended_at else None,
        }

    def incidents(self, which: Literal["open", "all"]) -> list[dict[str, Any]]:
        rows = self._sup().store.recent(status="open" if which == "open" else None, limit=_RECENT)
        return [_summary(r) for r in rows]

    def show(self, incident_id: str) -> dict[str, Any]:
        sup = self._sup()
        row = sup.store.get(incident_id)
        diag = row.diagnosis or {}
        trail = sup.guardrails.audit.entries(incident_id, limit=_AUDIT_TRAIL)
        return {
            **_summary(row),
            "evidence": list(diag.get("evidence") or []),
            "candidates": list(diag.get("candidates") or []),
            "engine": diag.get("engine"),
            "actions": list(row.actions or []),
            "notes": list(row.notes or []),
            "signals": len(row.signals or []),
            "audit": [
                {
                    "seq": e.seq,
                    "ts": e.ts.isoformat(),
                    "actor": e.actor,
                    "action": e.action,
                    "verdict": e.verdict,
                    "reason": e.reason,
                }
                for e in trail
            ],
        }

    # -- acting --------------------------------------------------------------
    def approve(self, incident_id: str, by: str) -> dict[str, Any]:
        with self._answers:
            self._sup().answer(incident_id, approved=True, by=by)
        return self.show(incident_id)

    def reject(self, incident_id: str, by: str, reason: str) -> dict[str, Any]:
        with self._answers:
            self._sup().answer(incident_id, approved=False, by=by, reason=reason)
        return self.show(incident_id)

    def _pipeline(self, name: str) -> str:
        known = {p.value for p in Pipeline} | {j.pipeline for j in self._sup().jobs.values()}
        if name not in known:
            raise InputError(f"unknown pipeline {name!r}; known: {', '.join(sorted(known))}")
        return name

    def pause(self, pipeline: str | None, by: str) -> dict[str, Any]:
        sup = self._sup()
        reason = f"paused from Slack by {by}"
        if pipeline is None:
            sup.guardrails.pause("*", by=by, reason=reason)
            return {"scope": "*", "autofix_paused": True, "pipeline_paused": False}
        name = self._pipeline(pipeline)
        sup.guardrails.pause(name, by=by, reason=reason)
        self.rt.control.pause(name, "*", by=by, reason=reason)
        return {"scope": name, "autofix_paused": True, "pipeline_paused": True}

    def resume(self, pipeline: str | None, by: str) -> dict[str, Any]:
        sup = self._sup()
        reason = f"resumed from Slack by {by}"
        if pipeline is None:
            sup.guardrails.resume("*", by=by, reason=reason)
            return {"scope": "*", "autofix_paused": False, "global_paused": False}
        name = self._pipeline(pipeline)
        sup.guardrails.resume(name, by=by, reason=reason)
        self.rt.control.resume(name, "*", by=by, reason=reason)
        for job in sup.jobs.values():  # a person's resume overrides a pause the agents left on one dataset
            if job.pipeline == name and self.rt.control.is_paused(name, job.dataset):
                self.rt.control.resume(name, job.dataset, by=by, reason=reason)
        still = sup.guardrails.is_paused(name)
        return {"scope": name, "autofix_paused": still, "global_paused": still, "pipeline_paused": False}

    def _job(self, target: str) -> Job:
        jobs = self._sup().jobs
        if target in jobs:
            return jobs[target]
        matching = [j for j in jobs.values() if j.pipeline == target]
        if len(matching) == 1:
            return matching[0]
        keys = ", ".join(sorted(jobs)) or "none"
        if matching:
            raise InputError(f"{target} runs for several datasets; name one of: {keys}")
        raise InputError(f"no supervised job {target!r}; jobs: {keys}")

    def run(self, pipeline: str, by: str) -> dict[str, Any]:
        job = self._job(pipeline)
        with self._runs_lock:
            lock = self._runs.setdefault(job.key, threading.Lock())
        if not lock.acquire(blocking=False):
            raise InputError(f"{job.key} is already running (started from Slack)")
        try:
            summary = job.run(self.rt)
        finally:
            lock.release()
        return summary.model_dump(mode="json")

    # -- asking --------------------------------------------------------------
    def ask(self, question: str, by: str) -> str:
        status = self.status()
        incidents = self.incidents("all")
        memory = self._memory_for_questions()
        matches = memory.similar(question, k=5) if memory.count() else []
        return compose_answer(question, status=status, incidents=incidents, matches=matches, chat=self._chat_backend())

    def _memory_for_questions(self) -> IncidentMemory:
        if self._memory is not None:
            return self._memory
        ctx_memory = self._sup().context.memory
        if ctx_memory is not None:
            return ctx_memory  # type: ignore[no-any-return]
        if self._own_memory is None:
            from knowledge_base import IncidentMemory

            self._own_memory = IncidentMemory.from_settings(self.rt.settings)
        return self._own_memory

    def _chat_backend(self) -> ChatBackend | None:
        if self._chat != "auto":
            return self._chat
        return getattr(self._sup().context.llm, "chat", None)

    # -- audit ---------------------------------------------------------------
    def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        outcome = str(detail.get("outcome") or "accepted")
        self._sup().guardrails.audit.append(
            actor=actor,
            action=action,
            # Never executed/failed: a command is a request, and those two count against the agents' budgets.
            verdict=AuditVerdict.ALLOWED if outcome == "accepted" else AuditVerdict.REFUSED,
            pipeline=detail.get("pipeline"),
            incident_id=detail.get("incident_id"),
            args={k: v for k, v in detail.items() if k not in ("outcome", "incident_id", "pipeline")},
            reason=_audit_reason(outcome, detail),
        )

    def close(self) -> None:
        if self._own_memory is not None:
            self._own_memory.close()
            self._own_memory = None


def _audit_reason(outcome: str, detail: dict[str, Any]) -> str:
    said = str(detail.get("command_line") or f"{detail.get('via', 'slack')}: {detail.get('command', '')}")
    if outcome == "refused":
        return f"refused (role {detail.get('role', 'viewer')}): {said}"
    if outcome == "invalid":
        return f"invalid: {said}"
    return said


def _summary(row: IncidentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "pipeline": row.pipeline,
        "dataset": row.dataset,
        "status": row.status,
        "root_cause": row.root_cause,
        "confidence": row.confidence,
        "decision": row.decision,
        "playbook": row.playbook,
        "summary": row.summary,
        "opened_at": row.opened_at.isoformat(),
    }
