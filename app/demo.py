"""The supervised demo: ingestion under the agents while a script of real
faults strikes it, ending with what happened to each incident and the data
accounting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, func, select

from pipelines.runtime import RecordRow, RunRow, Runtime

__all__ = ["DEFAULT_SCRIPT", "DemoReport", "run_demo"]

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


def run_demo(
    rt: Runtime,
    *,
    dataset: str = "demo",
    script: tuple[str, ...] = DEFAULT_SCRIPT,
    on_step: Callable[[str], None] | None = None,
    memory: Any = None,
) -> DemoReport:
    from agents import AgentSettings, supervisor
    from evals.faults import high_res_sample_schema, make_fault
    from pipelines.ingestion import ingestion_job, make_sample_dataset

    say = on_step or (lambda _msg: None)
    landing = rt.settings.home / "demo" / dataset / "landing"
    schema = rt.settings.home / "demo" / dataset / "schema.yaml"
    schema.parent.mkdir(parents=True, exist_ok=True)
    schema.write_text(high_res_sample_schema(), encoding="utf-8")
    job = ingestion_job(dataset, str(landing), schema_path=schema)
    report = DemoReport()
    batch = 0

    def land() -> None:
        nonlocal batch
        make_sample_dataset(landing / f"batch-{batch:02d}", n_images=16, n_audio=2, n_text=3, seed=100 + batch)
        batch += 1

    settings = AgentSettings(validate_poll_s=0.2, validate_timeout_s=10)
    with supervisor(rt, [job], memory=memory, settings=settings) as sup:
        rt.configs.set("ingestion", dataset, _model(), {"retry_backoff_s": 0.05}, actor="demo", reason="fast retries")
        land()
        say("clean run")
        job.run(rt)
        sup.cycle()
        for name in script:
            fault = make_fault(name)
            land()
            say(f"injecting {name}")
            if fault.between_runs:
                job.run(rt)
                fault.apply(job, rt)
            else:
                fault.apply(job, rt)
                job.run(rt)
            opened = sup.cycle()
            for row in opened:
                report.incidents.append(
                    {
                        "fault": name,
                        "incident_id": row.id,
                        "root_cause": row.root_cause,
                        "decision": (row.diagnosis or {}) and sup.store.get(row.id).decision,
                        "playbook": row.playbook,
                        "status": _STATUS.get(row.status, "failed"),
                        "seconds_to_resolve": row.seconds_to_resolve,
                    }
                )
            if not opened:
                report.incidents.append(
                    {"fault": name, "incident_id": None, "root_cause": None, "decision": None, "playbook": None,
                     "status": "undetected", "seconds_to_resolve": None}
                )
            # The on-call engineer's part: the fault's cause goes away, a paused
            # pipeline is let go again, and the backlog is ingested.
            fault.heal()
            rt.control.resume("ingestion", dataset, by="on-call", reason=f"after {name}")
            job.run(rt)
            sup.cycle()
    report.accounting = _accounting(rt, dataset, landing)
    return report


def _model():  # type: ignore[no-untyped-def]
    from pipelines.ingestion import IngestionConfig

    return IngestionConfig
