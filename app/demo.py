"""The supervised demo: ingestion under the agents while a script of real
faults strikes it, ending with what happened to each incident and the data
accounting."""

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
    "bad_table_write",
    "stage_exception",
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
    """Ingestion under a supervisor while ``script``'s faults strike one after
    another: for each, land a batch, inject, run, let the agents handle it,
    then heal it, resume and ingest the backlog. Returns each fault's run and
    the data accounting over every run. ``llm`` is a diagnosis engine or
    None; by default the workspace settings choose it."""
    from agents import AgentSettings, supervisor
    from evals.faults import high_res_sample_schema, make_fault
    from pipelines.ingestion import ingestion_job, make_sample_dataset

    say = on_step or (lambda _msg: None)
    landing = rt.settings.home / "demo" / dataset / "landing"
    schema = rt.settings.home / "demo" / dataset / "schema.yaml"
    schema.parent.mkdir(parents=True, exist_ok=True)
    schema.write_text(high_res_sample_schema(), encoding="utf-8")
    job = ingestion_job(dataset, str(landing), schema_path=schema)
    runs: list[FaultRun] = []
    batch = 0

    def land() -> None:
        nonlocal batch
        make_sample_dataset(landing / f"batch-{batch:02d}", n_images=16, n_audio=2, n_text=3, seed=100 + batch)
        batch += 1

    settings = settings or AgentSettings(validate_poll_s=0.2, validate_timeout_s=10)
    extra = {} if llm is _FROM_SETTINGS else {"llm": llm}
    with supervisor(rt, [job], memory=memory, settings=settings, **extra) as sup:
        rt.configs.set("ingestion", dataset, _model(), {"retry_backoff_s": 0.05}, actor="demo", reason="fast retries")
        land()
        say("clean run")
        job.run(rt)
        sup.cycle()
        for name in script:
            fault = make_fault(name)
            land()
            say(f"injecting {name}")
            run = FaultRun(name=name, fault=fault, injected_at=datetime.now(UTC))
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
            # pipeline is let go again, and the backlog is ingested.
            fault.heal()
            rt.control.resume("ingestion", dataset, by="on-call", reason=f"after {name}")
            job.run(rt)
            sup.cycle()
    return runs, _accounting(rt, dataset, landing)


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
                {"fault": run.name, "incident_id": None, "root_cause": None, "decision": None, "playbook": None,
                 "status": "undetected", "seconds_to_resolve": None}
            )
    return report


def _model():  # type: ignore[no-untyped-def]
    from pipelines.ingestion import IngestionConfig

    return IngestionConfig
