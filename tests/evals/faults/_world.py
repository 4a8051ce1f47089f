"""A real workspace, a real sample dataset and an ingestion job over it, and
what the fault tests ask of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from pipelines.ingestion import IngestionConfig, SampleDatasetInfo
from pipelines.runtime import Job, RunEventRow, RunRow, RunSummary, Runtime

DATASET = "ds"


@dataclass
class World:
    rt: Runtime
    job: Job
    info: SampleDatasetInfo

    def run(self) -> RunSummary:
        return self.job.run(self.rt)

    def set_config(self, **changes: Any) -> None:
        self.rt.configs.set("ingestion", DATASET, IngestionConfig, changes, actor="test", reason="test setup")

    def config(self) -> IngestionConfig:
        return self.rt.configs.current("ingestion", DATASET, IngestionConfig)[1]

    def events(self, run_id: str, *types: str) -> list[RunEventRow]:
        return self.rt.events.list(run_id=run_id, types=list(types) or None, limit=5000)

    def runs(self) -> list[RunRow]:
        with Session(self.rt.engine) as s:
            return list(s.exec(select(RunRow).where(RunRow.dataset == DATASET).order_by(RunRow.started_at)))  # type: ignore[arg-type]

    def assert_nothing_lost(self) -> None:
        runs = self.runs()
        assert runs
        for run in runs:
            assert run.read == run.accepted + run.duplicates + run.quarantined, run
            assert sum((run.quarantine_reasons or {}).values()) == run.quarantined, run


def failed_stage(w: World, summary: RunSummary) -> RunEventRow:
    """The run failed, with exactly one stage_failed event; return it."""
    assert summary.status == "failed", summary
    (event,) = w.events(summary.run_id, "stage_failed")
    return event
