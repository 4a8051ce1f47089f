"""Incidents as rows in the metadata DB (what people list and approve), and
the jobs the supervisor watches (so another process can act on them)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, Text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from app.errors import NotFoundError
from pipelines.runtime import utcnow

__all__ = ["IncidentRow", "SupervisedJobRow", "IncidentStore", "new_incident_id"]

MAX_EVIDENCE = 400
"""Signals an incident keeps as evidence when later symptoms join it."""

OPEN_STATUSES = ("open", "pending_approval", "escalated")


class IncidentRow(SQLModel, table=True):
    __tablename__ = "incidents"

    id: str = Field(primary_key=True)
    pipeline: str = Field(index=True)
    dataset: str | None = None
    opened_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    closed_at: datetime | None = None
    status: str = "open"
    root_cause: str | None = None
    confidence: float | None = None
    decision: str | None = None
    playbook: str | None = None
    summary: str = Field(default="", sa_column=Column(Text))
    signals: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    diagnosis: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    actions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    seconds_to_resolve: float | None = None
    fault: str | None = None  # set by fault-injection runs, for reports


class SupervisedJobRow(SQLModel, table=True):
    __tablename__ = "supervised_jobs"

    pipeline: str = Field(primary_key=True)
    dataset: str = Field(primary_key=True)
    source: str = Field(sa_column=Column(Text))
    schema_path: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


def new_incident_id(now: datetime) -> str:
    return f"inc-{now.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class IncidentStore:
    """``clock`` stamps updates, so that the join window works on the
    agents' clock (simulated in replay)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def create(self, row: IncidentRow) -> IncidentRow:
        row.updated_at = self._clock()
        with Session(self._engine, expire_on_commit=False) as s:
            s.add(row)
            s.commit()
        return row

    def get(self, incident_id: str) -> IncidentRow:
        with Session(self._engine) as s:
            row = s.get(IncidentRow, incident_id)
        if row is None:
            raise NotFoundError(f"no incident {incident_id!r} (see `dataops incidents list`)")
        return row

    def update(self, incident_id: str, **fields: Any) -> IncidentRow:
        with Session(self._engine, expire_on_commit=False) as s:
            row = s.get(IncidentRow, incident_id)
            if row is None:
                raise NotFoundError(f"no incident {incident_id!r}")
            for k, v in fields.items():
                setattr(row, k, v)
            row.updated_at = self._clock()
            s.add(row)
            s.commit()
            return row

    def open_for(self, pipeline: str, dataset: str | None, since: datetime) -> IncidentRow | None:
        """The incident new symptoms should join: still open, same pipeline
        and dataset, touched within the join window."""
        q = select(IncidentRow).where(
            IncidentRow.pipeline == pipeline,
            col(IncidentRow.status).in_(OPEN_STATUSES),
            IncidentRow.updated_at >= since,
        )
        if dataset:
            q = q.where(IncidentRow.dataset == dataset)
        with Session(self._engine) as s:
            return s.exec(q.order_by(col(IncidentRow.opened_at).desc()).limit(1)).first()

    def append_signals(self, incident_id: str, signals: list[dict[str, Any]]) -> None:
        """Add joining symptoms to an incident's evidence, keeping at most
        ``MAX_EVIDENCE`` signals: the first half (what opened it) and the most
        recent; an alert storm would otherwise grow the row without bound."""
        row = self.get(incident_id)
        merged = [*row.signals, *signals]
        if len(merged) > MAX_EVIDENCE:
            head = MAX_EVIDENCE // 2
            merged = merged[:head] + merged[-(MAX_EVIDENCE - head) :]
        self.update(incident_id, signals=merged)

    def recent(self, *, status: str | None = None, limit: int = 100) -> list[IncidentRow]:
        q = select(IncidentRow)
        if status == "open":
            q = q.where(col(IncidentRow.status).in_(OPEN_STATUSES))
        elif status:
            q = q.where(IncidentRow.status == status)
        with Session(self._engine) as s:
            return list(s.exec(q.order_by(col(IncidentRow.opened_at).desc()).limit(limit)))

    def in_flight(self) -> list[IncidentRow]:
        with Session(self._engine) as s:
            return list(s.exec(select(IncidentRow).where(IncidentRow.status == "open")))

    # -- supervised jobs --------------------------------------------------
    def register_job(self, pipeline: str, dataset: str, source: str, schema_path: str | None = None) -> None:
        with Session(self._engine) as s:
            row = s.get(SupervisedJobRow, (pipeline, dataset)) or SupervisedJobRow(
                pipeline=pipeline, dataset=dataset, source=source
            )
            row.source, row.schema_path = source, schema_path
            s.add(row)
            s.commit()

    def jobs(self) -> list[SupervisedJobRow]:
        with Session(self._engine) as s:
            return list(s.exec(select(SupervisedJobRow)))


def window_start(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)
