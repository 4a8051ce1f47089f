"""Items flowing through stages, and the stage declaration."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.runtime._records import SourceRecord

if TYPE_CHECKING:
    from pipelines.runtime._spec import StageContext

__all__ = ["Item", "Stage", "ACCEPTED", "DUPLICATE", "QUARANTINED", "record_key"]

ACCEPTED, DUPLICATE, QUARANTINED = "accepted", "duplicate", "quarantined"


def record_key(source: str, sha256: str) -> str:
    """Identity of a source record for resume/skip: where it came from and what it held."""
    return hashlib.sha256(f"{source}\x00{sha256}".encode()).hexdigest()


@dataclass
class Item:
    """One record on its way through a run; ends with exactly one outcome."""

    record: SourceRecord
    sha256: str
    key: str
    outcome: str | None = None
    reason: str | None = None
    detail: str | None = None
    duplicate_of: str | None = None
    duplicate_kind: str | None = None
    sample_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, record: SourceRecord) -> Item:
        sha = hashlib.sha256(record.data).hexdigest()
        return cls(record=record, sha256=sha, key=record_key(record.source, sha))

    @property
    def pending(self) -> bool:
        return self.outcome is None

    def quarantine(self, reason: str, detail: str = "") -> None:
        self.outcome, self.reason, self.detail = QUARANTINED, reason, detail or None

    def mark_duplicate(self, of: str, kind: str) -> None:
        self.outcome, self.duplicate_of, self.duplicate_kind = DUPLICATE, of, kind

    def accept(self, sample_id: str) -> None:
        self.outcome, self.sample_id = ACCEPTED, sample_id


RecordFn = Callable[[Item, "StageContext"], None]
BatchFn = Callable[[list[Item], "StageContext"], None]


@dataclass(frozen=True)
class Stage:
    """A named step. ``per_record`` stages get one pending item at a time (in
    the worker pool; a ``RecordRejected`` quarantines that item); batch stages
    get every pending item of the batch at once."""

    name: str
    fn: Callable[..., None]
    per_record: bool = True
