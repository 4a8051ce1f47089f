"""The enrichment source: a dataset's raw Iceberg table at one snapshot, with
each sample's bytes read back from the object store. Read-only: the raw table
and the objects are never written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import NotFoundError, PipelineError, StorageError
from pipelines.enrichment._models_registry import ModelVersion
from pipelines.runtime import Runtime, SourceRecord

__all__ = ["Plan", "Binding", "RawSnapshotSource", "RAW_COLUMNS", "record_source", "source_uri", "parse_metadata"]

RAW_COLUMNS = ("sample_id", "uri", "modality", "sha256", "phash", "metadata", "ingested_at", "source")


@dataclass(frozen=True)
class Plan:
    """What one enrichment run does: which version, over which raw snapshot, with which models."""

    dataset: str
    version: str
    raw_snapshot_id: int | None
    embedding: ModelVersion
    labeler: ModelVersion


@dataclass
class Binding:
    """The runtime and plan a job's source and pipeline share once a run starts
    (a job builds its source before it is handed the runtime)."""

    rt: Runtime | None = None
    plan: Plan | None = None
    source: RawSnapshotSource | None = None  # the latest run's

    def bind(self, rt: Runtime, plan: Plan) -> None:
        self.rt, self.plan = rt, plan
        if self.source is not None:
            self.source.uri = source_uri(plan.dataset, plan.version)

    def require(self) -> tuple[Runtime, Plan]:
        if self.rt is None or self.plan is None:
            raise PipelineError("the enrichment source was read before its job was given a runtime")
        return self.rt, self.plan


def source_uri(dataset: str, version: str | None) -> str:
    return f"enrichment://{dataset}" + (f"?version={version}" if version else "")


def record_source(dataset: str, sample_id: str, version: str) -> str:
    """A record's ``source``: the run ledger keys on it, so each version
    enriches every sample once and another version does it again."""
    return f"{dataset}/{sample_id}@{version}"


class RawSnapshotSource:
    """Samples of the raw snapshot in ingestion order (oldest first)."""

    def __init__(self, binding: Binding, dataset: str) -> None:
        self.binding = binding
        self.dataset = dataset
        # Names the version once the run has resolved it (Binding.bind), so
        # that resuming an interrupted run picks up the same version's run.
        self.uri = source_uri(dataset, binding.plan.version if binding.plan else None)
        binding.source = self
        self._rows: list[dict[str, Any]] | None = None
        self._pos = 0

    def _load(self) -> list[dict[str, Any]]:
        if self._rows is None:
            rt, plan = self.binding.require()
            if plan.raw_snapshot_id is None:
                self._rows = []
            else:
                table = rt.offline.scan(plan.dataset, plan.raw_snapshot_id, columns=list(RAW_COLUMNS))
                rows = table.to_pylist()
                rows.sort(key=lambda r: (r["ingested_at"], r["sample_id"]))
                self._rows = rows
        return self._rows

    def count(self) -> int:
        return len(self._load())

    def read(self, n: int) -> list[SourceRecord]:
        rows = self._load()
        chunk = rows[self._pos : self._pos + n]
        self._pos += len(chunk)
        rt, plan = self.binding.require()
        return [self._record(rt, plan, r) for r in chunk]

    @staticmethod
    def _record(rt: Runtime, plan: Plan, row: dict[str, Any]) -> SourceRecord:
        meta: dict[str, Any] = {
            "sample_id": row["sample_id"],
            "modality": row["modality"],
            "uri": row["uri"],
            "sha256": row["sha256"],
            "phash": row["phash"],
            "ingested_at": row["ingested_at"],
            "raw_source": row["source"],
            "meta": parse_metadata(row["metadata"]),
        }
        data = b""
        try:
            data = rt.objects.get(row["uri"])
        except NotFoundError as exc:
            meta["_error"] = ("object_missing", str(exc))
        except StorageError as exc:
            meta["_error"] = ("object_unreadable", str(exc))
        return SourceRecord(
            source=record_source(plan.dataset, row["sample_id"], plan.version),
            data=data,
            metadata=meta,
            filename=str(row["uri"]).rsplit("/", 1)[-1],
            modality=row["modality"],
        )

    def ack(self, records: Sequence[SourceRecord]) -> None:
        return None

    def close(self) -> None:
        return None

    def probe(self) -> str | None:
        rt = self.binding.rt
        if rt is None:
            return None  # not bound to a runtime yet: nothing to ask
        if self.dataset not in rt.offline.tables():
            return f"dataset {self.dataset!r} has no raw table to enrich (ingest it first)"
        return None


def parse_metadata(value: Any) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}
