"""Annotation tables: tasks, people's answers, annotators and consensus
decisions. Listed in ``app.db.TABLE_MODULES``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.errors import InputError
from pipelines.annotation._consensus import Box

__all__ = [
    "TASK_STATUSES",
    "OPEN_STATUSES",
    "DONE_STATUSES",
    "AnnotationTaskRow",
    "AnnotationRow",
    "AnnotatorRow",
    "ConsensusRow",
    "aware",
    "utc_now",
    "TaskSeed",
    "QueueStats",
    "AnnotatorQuarantine",
    "task_id_for",
    "boxes_to_json",
    "boxes_from_json",
    "new_task_row",
]

TASK_STATUSES = ("queued", "auto_accepted", "in_review", "expert_review", "accepted", "rejected")
OPEN_STATUSES = ("queued", "in_review")  # waiting for people
DONE_STATUSES = ("accepted", "rejected")  # closed by people (consensus or expert)


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive timestamps; every one we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _ts(*, nullable: bool = False, index: bool = False) -> Any:
    if nullable:
        return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True, index=index))
    return Field(default_factory=utc_now, sa_column=Column(DateTime(timezone=True), nullable=False, index=index))


class AnnotationTaskRow(SQLModel, table=True):
    """One sample to label in one dataset, from arrival to its final label."""

    __tablename__ = "annotation_tasks"
    __table_args__ = (
        UniqueConstraint("dataset", "sample_id", name="uq_annotation_tasks_sample"),
        Index("ix_annotation_tasks_queue", "dataset", "status", "priority"),
    )

    id: str = Field(primary_key=True)
    dataset: str = Field(index=True)
    sample_id: str
    uri: str = Field(sa_column=Column(Text, nullable=False))
    modality: str = "image"
    status: str = "queued"
    priority: float = 0.0
    strategy: str = "random"
    auto_label: str | None = None
    auto_confidence: float | None = None
    auto_model: str | None = None
    audit: bool = False  # auto-accepted, and also sent to people to measure the model
    final_label: str | None = None
    final_boxes: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # source (auto|human|expert), annotators, confidence, agreement, model
    provenance: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    agreement: float | None = None
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))  # e.g. width/height, text
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    done_at: datetime | None = _ts(nullable=True, index=True)


class AnnotationRow(SQLModel, table=True):
    """One person's answer to one task (one per task and annotator)."""

    __tablename__ = "annotations"
    __table_args__ = (UniqueConstraint("task_id", "annotator", name="uq_annotations_task_annotator"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(
        sa_column=Column(String, ForeignKey("annotation_tasks.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    dataset: str = Field(index=True)
    annotator: str = Field(index=True)
    label: str | None = None
    boxes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    source: str = "human"  # human | expert
    quarantined: bool = False  # the annotator was quarantined: this answer no longer counts
    lead_time_s: float | None = None
    created_at: datetime = _ts()


class AnnotatorRow(SQLModel, table=True):
    """A person who answers tasks, with their last measured quality."""

    __tablename__ = "annotators"

    name: str = Field(primary_key=True)
    expert: bool = False
    quarantined: bool = False
    reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    quarantined_at: datetime | None = _ts(nullable=True)
    agreement: float | None = None
    tasks: int = 0
    outlier: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ConsensusRow(SQLModel, table=True):
    """One routing decision on a task: the label the answers agreed on, how
    strongly, and where the task went."""

    __tablename__ = "annotation_consensus"

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True)
    dataset: str = Field(index=True)
    label: str | None = None
    boxes: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    agreement: float | None = None
    route: str
    provenance: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    at: datetime = _ts()


# --- values the queue takes and returns ------------------------------------------
def task_id_for(dataset: str, sample_id: str) -> str:
    """A stable task id, so re-enqueueing or re-importing finds the same task."""
    return "t_" + hashlib.sha256(f"{dataset}\0{sample_id}".encode()).hexdigest()[:24]


def boxes_to_json(boxes: Sequence[Box]) -> list[dict[str, Any]]:
    return [asdict(b) for b in boxes]


def boxes_from_json(items: Sequence[Mapping[str, Any]] | None) -> list[Box]:
    return [Box(**dict(item)) for item in items or ()]


@dataclass(frozen=True)
class TaskSeed:
    """A sample to put in the queue. ``auto_accept`` closes it with the
    model's label right away; ``audit`` also sends such a task to people."""

    sample_id: str
    uri: str
    modality: str = "image"
    priority: float = 0.0
    strategy: str = "random"
    auto_label: str | None = None
    auto_confidence: float | None = None
    auto_model: str | None = None
    auto_accept: bool = False
    audit: bool = False
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sample_id:
            raise InputError("a task needs a sample_id")
        if self.auto_accept and self.auto_label is None:
            raise InputError(f"sample {self.sample_id!r}: auto_accept needs an auto_label")
        if self.audit and not self.auto_accept:
            raise InputError(f"sample {self.sample_id!r}: only an auto-accepted task can be audited")


@dataclass(frozen=True)
class QueueStats:
    """Backlog (tasks waiting for people: queued + in_review), the age of its
    oldest task, tasks people closed in the last hour (= throughput per hour),
    hours to clear the backlog at that rate (None when it is 0), counts by
    status, the expert queue and audited auto-labels still waiting."""

    backlog: int
    oldest_age_s: float
    done_last_hour: int
    throughput_per_h: float
    forecast_clear_h: float | None
    by_status: dict[str, int]
    expert_backlog: int
    audit_pending: int


@dataclass(frozen=True)
class AnnotatorQuarantine:
    """What quarantining an annotator did in this dataset: answers newly set
    aside, tasks sent back to the queue, and whether they already were."""

    annotator: str
    reason: str
    answers: int
    requeued: tuple[str, ...]
    already: bool


def new_task_row(dataset: str, seed: TaskSeed) -> AnnotationTaskRow:
    """The task row for a new seed (closed at once when it is auto-accepted)."""
    now = utc_now()
    row = AnnotationTaskRow(
        id=task_id_for(dataset, seed.sample_id),
        dataset=dataset,
        sample_id=seed.sample_id,
        uri=seed.uri,
        modality=seed.modality,
        priority=float(seed.priority),
        strategy=seed.strategy,
        auto_label=seed.auto_label,
        auto_confidence=seed.auto_confidence,
        auto_model=seed.auto_model,
        audit=seed.audit,
        meta=dict(seed.meta),
        created_at=now,
        updated_at=now,
    )
    if seed.auto_accept:
        row.status = "auto_accepted"
        row.final_label = seed.auto_label
        row.done_at = now
        row.provenance = {
            "source": "auto",
            "annotators": [],
            "confidence": seed.auto_confidence,
            "agreement": None,
            "model": seed.auto_model,
        }
    return row
