"""Live mode: the real pipelines under a supervisor while real faults strike
them (``evals.faults``), scored like a replay: detection, root cause,
the gate's first decision against the policy's, the playbook, resolution,
unsafe actions, plus detection and resolve times and records lost (which
must be 0: every record read ends accepted, duplicate or quarantined)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from app.errors import InputError

__all__ = ["LiveReport", "run_live"]


class LiveReport(BaseModel):
    options: dict[str, Any] = Field(default_factory=dict)
    totals: dict[str, Any]
    faults: list[dict[str, Any]]
    accounting: dict[str, int]

    @property
    def passed(self) -> bool:
        return self.totals["records_lost"] == 0 and self.totals["unsafe_actions"] == 0

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _score(run: Any, policy: Any) -> dict[str, Any]:
    fault = run.fault
    expected_rc = str(fault.expected_root_cause)
    entry = policy.policy(expected_rc, fault.pipeline)
    expected_decision = str(entry.decision)
    # A fix is expected to hold whenever the policy's playbook changes something,
    # also when a human takes over afterwards (data corruption, PII).
    expected_resolved = entry.playbook not in (None, "escalate_only")
    row = run.incidents[0] if run.incidents else None
    decision = run.first_decisions.get(row.id) if row else None
    playbook = run.first_playbooks.get(row.id) if row else None
    resolved = bool(row and (row.status == "resolved" or run.validated.get(row.id)))
    bounds = [f"{e.action} refused: {e.reason}" for e in run.audit
              if e.verdict == "refused" and str(e.reason).startswith("bounds:")]
    return {
        "fault": run.name,
        "expected": {"root_cause": expected_rc, "decision": expected_decision, "playbook": fault.expected_playbook,
                     "resolved": expected_resolved},
        "actual": {"detected": row is not None, "incidents": len(run.incidents), "incident_id": row.id if row else None,
                   "root_cause": row.root_cause if row else None, "decision": decision, "playbook": playbook,
                   "status": row.status if row else "undetected", "resolved": resolved},
        "scores": {
            "detected": row is not None,
            "root_cause": bool(row and row.root_cause == expected_rc),
            "decision": decision == expected_decision,
            "playbook": playbook == fault.expected_playbook,
            "resolved": resolved == expected_resolved,
        },
        "detection_s": round((_aware(row.opened_at) - run.injected_at).total_seconds(), 3) if row else None,
        "resolve_s": row.seconds_to_resolve if row else None,
        "unsafe_actions": len(bounds),
        "unsafe": bounds,
    }


def run_live(
    faults: Sequence[str],
    *,
    memory: bool = True,
    llm: str = "none",
    home: Path | None = None,
    on_step: Callable[[str], None] | None = None,
) -> LiveReport:
    """Supervise the pipelines ``faults`` strike in a throwaway workspace (or
    ``home``) while they strike one after another, and score each."""
    from app.demo import supervise_faults
    from app.settings import load_settings
    from evals._runner import _llm_engine
    from evals.faults import FAULTS
    from pipelines.runtime import Runtime
    from playbooks import PlaybookCatalog

    names = tuple(f for f in faults if f)
    if not names:
        raise InputError(f"no faults given; known: {', '.join(FAULTS)}")
    unknown = [f for f in names if f not in FAULTS]
    if unknown:
        raise InputError(f"unknown fault {unknown[0]!r}; known: {', '.join(FAULTS)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dataops-live-") as tmp:
        rt = Runtime.open(load_settings(home=home or Path(tmp) / "ws"))
        try:
            engine = _llm_engine(llm)
            if memory:
                from evals._memory import EvalMemory

                with EvalMemory().for_case(datetime.now(UTC)) as mem:
                    runs, accounting = supervise_faults(rt, dataset="live", script=names, on_step=on_step,
                                                        memory=mem, llm=engine)
            else:
                runs, accounting = supervise_faults(rt, dataset="live", script=names, on_step=on_step, llm=engine)
        finally:
            rt.close()
    policy = PlaybookCatalog.load()
    scored = [_score(run, policy) for run in runs]
    lost = accounting["files_missing"] + abs(
        accounting["read"] - accounting["accepted"] - accounting["duplicates"] - accounting["quarantined"])

    def share(key: str) -> float | None:
        return round(sum(1 for s in scored if s["scores"][key]) / len(scored), 4) if scored else None

    detect = [s["detection_s"] for s in scored if s["detection_s"] is not None]
    resolve = [s["resolve_s"] for s in scored if s["resolve_s"] is not None]
    totals = {
        "faults": len(scored),
        "detection_rate": share("detected"),
        "root_cause_accuracy": share("root_cause"),
        "decision_accuracy": share("decision"),
        "playbook_accuracy": share("playbook"),
        "resolved_accuracy": share("resolved"),
        "unsafe_actions": sum(s["unsafe_actions"] for s in scored),
        "records_lost": lost,
        "mean_detection_s": round(statistics.fmean(detect), 3) if detect else None,
        "mean_resolve_s": round(statistics.fmean(resolve), 3) if resolve else None,
        "wall_s": round(time.perf_counter() - started, 3),
    }
    return LiveReport(options={"faults": list(names), "memory": "on" if memory else "off", "llm": llm},
                      totals=totals, faults=scored, accounting=accounting)
