"""The supervised demo: ingestion, annotation and enrichment under the
agents while a script of real faults strikes them, ending with what happened
to each incident and the ingestion data accounting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, func, select

from pipelines.runtime import RecordRow, RunRow, Runtime

__all__ = ["DEFAULT_SCRIPT", "DemoReport", "FaultRun", "run_demo", "supervise_faults"]

# Low and medium risk first, then what must reach a human.
DEFAULT_SCRIPT = (
    "transient_source_errors",
    "memory_blowup",
    "bad_config",
    "source_down",
    "corrupt_file_flood",
    "duplicate_flood",
    "schema_change",
    "annotator_random",
    "autolabel_degraded",
    "embedding_model_failure",
    "embedding_oom",
    "enrichment_issue_spike",
    "bad_table_write",
    "stage_exception",
    "annotation_backlog_surge",
)

_FROM_SETTINGS: Any = object()

_STATUS = {"resolved": "resolved", "pending_approval": "pending_approval", "escalated": "escalated"}


@dataclass
class DemoReport:
    incidents: list[dict[str, Any]] = field(default_factory=list)
    accounting: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"incidents": self.incidents, "accounting": self.accounting}


def _accounting(rt: Runtime, dataset: str, landing: Path) -> dict[str, int]:
    """Totals over every run, and how many landed files have no ledger record
    (must be 0: every file ends accepted, duplicate or quarantined)."""
    landed = {str(p.resolve()) for p in landing.rglob("*") if p.is_file() and p.name != "manifest.jsonl"}
    with Session(rt.engine) as s:
        seen = set(s.exec(select(RecordRow.source).where(RecordRow.dataset == dataset)))
        row = s.exec(
            select(func.sum(RunRow.read), func.sum(RunRow.accepted), func.sum(RunRow.duplicates), func.sum(RunRow.quarantined))
            .where(RunRow.dataset == dataset)
        ).one()
        sources = s.exec(select(func.count(func.distinct(RecordRow.source))).where(RecordRow.dataset == dataset)).one()
    read, accepted, duplicates, quarantined = (int(v or 0) for v in row)
    return {
        "read": read,
        "accepted": accepted,
        "duplicates": duplicates,
        "quarantined": quarantined,
        "sources": int(sources),
        "files_landed": len(landed),
        "files_missing": len(landed - seen),
    }


@dataclass
class FaultRun:
    """One injected fault and what the supervisor made of it: the incidents
    it opened (with each one's first gate decision, first playbook, whether
    its fix held, and its audit trail) and when the fault was injected."""

    name: str
    fault: Any
    injected_at: datetime
    pipeline: str = "ingestion"
    incidents: list[Any] = field(default_factory=list)
    first_decisions: dict[str, str | None] = field(default_factory=dict)
    first_playbooks: dict[str, str | None] = field(default_factory=dict)
    validated: dict[str, bool] = field(default_factory=dict)
    audit: list[Any] = field(default_factory=list)


def supervise_faults(
    rt: Runtime,
    *,
    dataset: str = "demo",
    script: tuple[str, ...] = DEFAULT_SCRIPT,
    on_step: Callable[[str], None] | None = None,
    memory: Any = None,
    llm: Any = _FROM_SETTINGS,
    settings: Any = None,
) -> tuple[list[FaultRun], dict[str, int]]:
    """The pipelines ``script``'s faults strike (ingestion always) under one
    supervisor: for each fault, new data arrives for its pipeline, the fault
    is injected, the job runs and the agents handle it; then the fault is
    healed, a paused pipeline resumed and the job run again. Returns each
    fault's run and the ingestion data accounting over every run. ``llm`` is
    a diagnosis engine or None; by default the workspace settings choose it."""
    from agents import AgentSettings, supervisor
    from app._demo_world import DemoWorld
    from evals.faults import FAULTS, make_fault

    say = on_step or (lambda _msg: None)
    wanted = {"ingestion", *(FAULTS[name].pipeline for name in script if name in FAULTS)}
    world = DemoWorld.create(rt, dataset, pipelines=wanted)
    runs: list[FaultRun] = []
    settings = settings or AgentSettings(validate_poll_s=0.2, validate_timeout_s=10)
    extra = {} if llm is _FROM_SETTINGS else {"llm": llm}
    with supervisor(rt, list(world.jobs.values()), memory=memory, settings=settings, **extra) as sup:
        world.configure()
        say("clean runs")
        for pipeline in world.jobs:
            world.feed(pipeline)
            world.jobs[pipeline].run(rt)
        sup.cycle()
        for name in script:
            fault = make_fault(name)
            job = world.jobs[fault.pipeline]
            world.feed(fault.pipeline)
            say(f"injecting {name} into {fault.pipeline}")
            run = FaultRun(name=name, fault=fault, injected_at=datetime.now(UTC), pipeline=fault.pipeline)
            if fault.between_runs:
                job.run(rt)
                run.injected_at = datetime.now(UTC)
                fault.apply(job, rt)
            else:
                fault.apply(job, rt)
                job.run(rt)
            for row in sup.cycle():
                values = sup.graph.get_state({"configurable": {"thread_id": row.id}}).values or {}
                tried = list(values.get("tried") or [])
                run.incidents.append(sup.store.get(row.id))
                run.first_decisions[row.id] = values.get("first_decision")
                run.first_playbooks[row.id] = tried[0] if tried else values.get("playbook")
                run.validated[row.id] = bool((values.get("validation") or {}).get("ok"))
                run.audit.extend(sup.guardrails.audit.entries(row.id, limit=1000))
            runs.append(run)
            # The on-call engineer's part: the fault's cause goes away, a paused
            # pipeline is let go again, and what waited is processed.
            fault.heal()
            rt.control.resume(fault.pipeline, job.dataset, by="on-call", reason=f"after {name}")
            job.run(rt)
            sup.cycle()
    return runs, _accounting(rt, dataset, world.landing)


def run_demo(
    rt: Runtime,
    *,
    dataset: str = "demo",
    script: tuple[str, ...] = DEFAULT_SCRIPT,
    on_step: Callable[[str], None] | None = None,
    memory: Any = None,
) -> DemoReport:
    runs, accounting = supervise_faults(rt, dataset=dataset, script=script, on_step=on_step, memory=memory)
    report = DemoReport(accounting=accounting)
    for run in runs:
        for row in run.incidents:
            report.incidents.append(
                {
                    "fault": run.name,
                    "pipeline": run.pipeline,
                    "incident_id": row.id,
                    "root_cause": row.root_cause,
                    "decision": row.decision if row.diagnosis else None,
                    "playbook": row.playbook,
                    "status": _STATUS.get(row.status, "failed"),
                    "seconds_to_resolve": row.seconds_to_resolve,
                }
            )
        if not run.incidents:
            report.incidents.append(
                {"fault": run.name, "pipeline": run.pipeline, "incident_id": None, "root_cause": None,
                 "decision": None, "playbook": None, "status": "undetected", "seconds_to_resolve": None}
            )
    return report

