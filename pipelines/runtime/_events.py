"""Run events (persisted in the metadata DB and logged) and pipeline pause state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pipelines.runtime._models import PipelineStateRow, RunEventRow, utcnow

__all__ = ["EventLog", "PipelineControl"]

_log = structlog.get_logger("dataops.pipeline")


class EventLog:
    """What happened in the pipelines, in order. The monitor agent reads it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def emit(
        self,
        pipeline: str,
        type: str,
        *,
        run_id: str | None = None,
        dataset: str | None = None,
        level: str = "info",
        stage: str | None = None,
        message: str = "",
        **data: Any,
    ) -> RunEventRow:
        row = RunEventRow(
            run_id=run_id,
            pipeline=pipeline,
            dataset=dataset,
            type=type,
            level=level,
            stage=stage,
            message=message,
            data=data,
        )
        with Session(self._engine, expire_on_commit=False) as s:
            s.add(row)
            s.commit()
        getattr(_log, level if level in ("debug", "info", "warning", "error") else "info")(
            type, pipeline=pipeline, run_id=run_id, dataset=dataset, stage=stage, message=message, **data
        )
        return row

    def list(
        self,
        *,
        pipeline: str | None = None,
        run_id: str | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        until_id: int | None = None,
        datasets: list[str] | None = None,
        types: list[str] | None = None,
        limit: int = 500,
        oldest_first: bool = False,
    ) -> list[RunEventRow]:
        """Events in id order (= insert order). ``limit`` keeps the newest
        ones, or the oldest with ``oldest_first`` (to page through with
        ``after_id``). ``datasets`` also keeps events of no dataset."""
        q = select(RunEventRow)
        if pipeline:
            q = q.where(RunEventRow.pipeline == pipeline)
        if run_id:
            q = q.where(RunEventRow.run_id == run_id)
        if since:
            q = q.where(RunEventRow.ts >= since)
        if after_id is not None:
            q = q.where(RunEventRow.id > after_id)  # type: ignore[operator]
        if until_id is not None:
            q = q.where(RunEventRow.id <= until_id)  # type: ignore[operator]
        if datasets is not None:
            q = q.where(or_(col(RunEventRow.dataset).is_(None), col(RunEventRow.dataset).in_(datasets)))
        if types:
            q = q.where(RunEventRow.type.in_(types))  # type: ignore[attr-defined]
        order = col(RunEventRow.id).asc() if oldest_first else col(RunEventRow.id).desc()
        with Session(self._engine) as s:
            rows = list(s.exec(q.order_by(order).limit(limit)))
        if not oldest_first:
            rows.reverse()
        return rows

    def last_id(self) -> int:
        """The highest event id stored (0 when there is none)."""
        with Session(self._engine) as s:
            return int(s.exec(select(func.max(RunEventRow.id))).one() or 0)


class PipelineControl:
    """Pause and resume a pipeline, for one dataset or all (``"*"``)."""

    def __init__(self, engine: Engine, events: EventLog) -> None:
        self._engine = engine
        self._events = events

    def _set(self, pipeline: str, dataset: str, paused: bool, by: str, reason: str) -> None:
        with Session(self._engine) as s:
            row = s.get(PipelineStateRow, (pipeline, dataset))
            if row is None:
                row = PipelineStateRow(pipeline=pipeline, dataset=dataset)
            row.paused, row.by, row.reason, row.at = paused, by, reason, utcnow()
            s.add(row)
            s.commit()
        self._events.emit(
            pipeline,
            "pipeline_paused" if paused else "pipeline_resumed",
            dataset=None if dataset == "*" else dataset,
            message=reason,
            by=by,
        )

    def pause(self, pipeline: str, dataset: str = "*", *, by: str, reason: str = "") -> None:
        self._set(pipeline, dataset, True, by, reason)

    def resume(self, pipeline: str, dataset: str = "*", *, by: str, reason: str = "") -> None:
        self._set(pipeline, dataset, False, by, reason)

    def is_paused(self, pipeline: str, dataset: str | None = None) -> bool:
        keys = [(pipeline, "*")] + ([(pipeline, dataset)] if dataset else [])
        with Session(self._engine) as s:
            return any((row := s.get(PipelineStateRow, k)) is not None and row.paused for k in keys)
