"""Metadata tables shared by every pipeline: runs, their events, the record
ledger, staged samples, quarantine, config versions and pipeline state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = [
    "utcnow",
    "DatasetRow",
    "RunRow",
    "RunEventRow",
    "RecordRow",
    "SampleRow",
    "QuarantineRow",
    "ConfigVersionRow",
    "PipelineStateRow",
    "RUN_STATUSES",
]

RUN_STATUSES = ("pending", "running", "paused", "succeeded", "failed")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json(default: Any = None) -> Any:
    return Field(default_factory=dict if default is None else default, sa_column=Column(JSON))


class DatasetRow(SQLModel, table=True):
    __tablename__ = "datasets"

    name: str = Field(primary_key=True)
    pipeline: str = "ingestion"
    schema_yaml: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"

    id: str = Field(primary_key=True)
    pipeline: str = Field(index=True)
    dataset: str = Field(index=True)
    source: str = Field(sa_column=Column(Text))
    status: str = "pending"
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None
    owner: str | None = None
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped: int = 0
    quarantine_reasons: dict[str, int] = _json()
    snapshot_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    config_version: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    seconds: float = 0.0


class RunEventRow(SQLModel, table=True):
    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_pipeline_ts", "pipeline", "ts"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str | None = Field(default=None, index=True)
    pipeline: str
    dataset: str | None = None
    ts: datetime = Field(default_factory=utcnow)
    type: str
    level: str = "info"
    stage: str | None = None
    message: str = Field(default="", sa_column=Column(Text))
    data: dict[str, Any] = _json()


class RecordRow(SQLModel, table=True):
    """The ledger: one row per source record a run finished with."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("pipeline", "dataset", "record_key", name="uq_records_key"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    pipeline: str
    dataset: str
    record_key: str  # sha256 of (source, content sha256): a rerun skips what it already saw
    source: str = Field(sa_column=Column(Text))
    sha256: str
    outcome: str  # accepted | duplicate | quarantined
    sample_id: str | None = None
    reason: str | None = None
    detail: str | None = Field(default=None, sa_column=Column(Text))
    duplicate_of: str | None = None
    at: datetime = Field(default_factory=utcnow)


class SampleRow(SQLModel, table=True):
    """An accepted sample, staged here until its run commits it to the offline table."""

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_dataset_sha", "dataset", "sha256"),)

    dataset: str = Field(primary_key=True)
    sample_id: str = Field(primary_key=True)
    run_id: str = Field(index=True)
    source: str = Field(sa_column=Column(Text))
    uri: str = Field(sa_column=Column(Text))
    modality: str
    sha256: str
    phash: int | None = Field(default=None, sa_column=Column(BigInteger))
    quality: float = 0.0
    size_bytes: int = 0
    meta: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow)
    committed: bool = False


class QuarantineRow(SQLModel, table=True):
    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    pipeline: str
    dataset: str = Field(index=True)
    source: str = Field(sa_column=Column(Text))
    reason: str = Field(index=True)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    uri: str | None = Field(default=None, sa_column=Column(Text))
    sha256: str
    size_bytes: int = 0
    at: datetime = Field(default_factory=utcnow)


class ConfigVersionRow(SQLModel, table=True):
    __tablename__ = "config_versions"
    __table_args__ = (UniqueConstraint("pipeline", "dataset", "version", name="uq_config_version"),)

    id: int | None = Field(default=None, primary_key=True)
    pipeline: str
    dataset: str = "*"
    version: int
    values: dict[str, Any] = _json()
    changed: dict[str, Any] = _json()  # key -> [old, new]
    actor: str = "system"
    reason: str = ""
    good: bool | None = None  # a run that succeeded on it marks it good
    at: datetime = Field(default_factory=utcnow)


class PipelineStateRow(SQLModel, table=True):
    """Whether a pipeline (for one dataset, or "*" for all) is paused."""

    __tablename__ = "pipeline_state"

    pipeline: str = Field(primary_key=True)
    dataset: str = Field(primary_key=True, default="*")
    paused: bool = False
    by: str = ""
    reason: str = ""
    at: datetime = Field(default_factory=utcnow)
