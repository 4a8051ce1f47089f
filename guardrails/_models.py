"""Guardrail tables: the hash-chained audit log, the kill switch, the
per-pipeline in-flight lock and the idempotency ledger of actions."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Text
from sqlalchemy.schema import Table
from sqlmodel import Field, SQLModel

__all__ = [
    "AuditVerdict",
    "LedgerStatus",
    "AuditEntry",
    "KillSwitch",
    "InFlight",
    "ActionLedger",
    "GUARDRAIL_TABLES",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class AuditVerdict(StrEnum):
    ALLOWED = "allowed"
    REFUSED = "refused"
    DRY_RUN = "dry_run"
    EXECUTED = "executed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class LedgerStatus(StrEnum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


class AuditEntry(SQLModel, table=True):
    """One line of the append-only audit trail.

    ``seq`` is assigned by :class:`guardrails.AuditLog` while it holds the
    append lock, so it has no gaps; ``hash`` is
    ``sha256(prev_hash + canonical JSON of the other fields)``.
    """

    __tablename__ = "guardrail_audit"
    __table_args__ = (
        Index("ix_guardrail_audit_pipeline_ts", "pipeline", "ts"),
        Index("ix_guardrail_audit_incident", "incident_id", "verdict"),
        Index("ix_guardrail_audit_ts", "ts"),
    )

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    ts: datetime = _ts()
    actor: str
    incident_id: str | None = None
    pipeline: str | None = None
    action: str
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    risk: str | None = None
    verdict: str
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    idempotency_key: str | None = Field(default=None, index=True)
    result: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    prev_hash: str
    hash: str


class KillSwitch(SQLModel, table=True):
    """Human override: auto-fix is paused for ``scope`` ("*" or a pipeline)."""

    __tablename__ = "guardrail_kill_switch"

    scope: str = Field(primary_key=True)
    paused: bool = False
    by: str
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    at: datetime = _ts()


class InFlight(SQLModel, table=True):
    """The one remediation in flight on a pipeline; the primary key is the lock."""

    __tablename__ = "guardrail_in_flight"

    pipeline: str = Field(primary_key=True)
    incident_id: str
    since: datetime = _ts()


class ActionLedger(SQLModel, table=True):
    """What became of each idempotency key, so a restart never repeats a done action."""

    __tablename__ = "guardrail_action_ledger"

    idempotency_key: str = Field(primary_key=True)
    status: str
    result: Any = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))
    attempts: int = 1
    started_at: datetime = _ts()
    finished_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


GUARDRAIL_TABLES: tuple[Table, ...] = (
    _table(AuditEntry),
    _table(KillSwitch),
    _table(InFlight),
    _table(ActionLedger),
)
