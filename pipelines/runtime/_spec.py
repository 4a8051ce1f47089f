"""What a pipeline gives the runner, and what a run reports back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel
from sqlmodel import Session

from pipelines.runtime._config import PipelineConfig
from pipelines.runtime._models import RunRow
from pipelines.runtime._runtime import Runtime
from pipelines.runtime._stages import Item, Stage

__all__ = ["StageContext", "PipelineSpec", "RunSummary", "RunProgress", "ProgressFn"]


@dataclass
class StageContext:
    runtime: Runtime
    pipeline: str
    dataset: str
    run_id: str
    config: PipelineConfig
    state: dict[str, Any] = field(default_factory=dict)


class PipelineSpec(Protocol):
    """What a pipeline gives the runner."""

    name: str
    config_model: type[PipelineConfig]

    def stages(self) -> list[Stage]: ...

    def open(self, ctx: StageContext) -> None: ...

    def commit_rows(self, items: list[Item], ctx: StageContext, session: Session) -> None: ...

    def after_commit(self, items: list[Item], ctx: StageContext) -> None: ...

    def finalize(self, ctx: StageContext) -> int | None: ...


class RunSummary(BaseModel):
    run_id: str
    pipeline: str
    dataset: str
    source: str
    status: str
    read: int
    accepted: int
    duplicates: int
    quarantined: int
    skipped: int
    quarantine_reasons: dict[str, int]
    snapshot_id: int | None
    seconds: float
    error: str | None = None

    @classmethod
    def of(cls, run: RunRow) -> RunSummary:
        return cls(
            run_id=run.id,
            pipeline=run.pipeline,
            dataset=run.dataset,
            source=run.source,
            status=run.status,
            read=run.read,
            accepted=run.accepted,
            duplicates=run.duplicates,
            quarantined=run.quarantined,
            skipped=run.skipped,
            quarantine_reasons=dict(run.quarantine_reasons or {}),
            snapshot_id=run.snapshot_id,
            seconds=round(run.seconds, 3),
            error=run.error,
        )


@dataclass
class RunProgress:
    run_id: str
    read: int
    accepted: int
    duplicates: int
    quarantined: int
    skipped: int


ProgressFn = Callable[[RunProgress], None]
