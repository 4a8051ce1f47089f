"""The enrichment store's table: ``<dataset>__enrichment`` in the offline
store, one row per (sample, version), one snapshot per run. The raw table is
only ever read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from app.errors import NotFoundError
from pipelines.enrichment._config import enrichment_table
from pipelines.runtime import Runtime, utcnow

__all__ = [
    "all_issues",
    "enrichment_schema",
    "publish_rows",
    "read_enrichment",
    "latest_enrichment",
    "join_latest_enrichment",
    "manifest_enrichment_columns",
]


def all_issues() -> tuple[str, ...]:
    """Every issue any scorer can flag, in a stable order."""
    from pipelines.enrichment._quality import AUDIO_ISSUES, IMAGE_ISSUES, TEXT_ISSUES

    return tuple(dict.fromkeys((*IMAGE_ISSUES, *AUDIO_ISSUES, *TEXT_ISSUES)))


def enrichment_schema() -> pa.Schema:
    issues = all_issues()
    return pa.schema(
        [
            pa.field("sample_id", pa.string(), nullable=False),
            pa.field("dataset", pa.string()),
            pa.field("version", pa.string()),
            pa.field("run_id", pa.string()),
            pa.field("raw_snapshot_id", pa.int64()),
            pa.field("modality", pa.string()),
            pa.field("status", pa.string()),
            *(pa.field(f"score_{i}", pa.float64()) for i in issues),
            *(pa.field(f"flag_{i}", pa.bool_()) for i in issues),
            pa.field("issues", pa.string()),
            pa.field("quality_blocked", pa.bool_()),
            pa.field("duplicate_of", pa.string()),
            pa.field("duplicate_kind", pa.string()),
            pa.field("duplicate_similarity", pa.float64()),
            pa.field("auto_label", pa.string()),
            pa.field("auto_label_confidence", pa.float64()),
            pa.field("auto_label_model", pa.string()),
            pa.field("auto_label_accepted", pa.bool_()),
            pa.field("embedding_model", pa.string()),
            pa.field("embedded_kinds", pa.string()),
            pa.field("enriched_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def _row(r: Any, issues: Sequence[str]) -> dict[str, Any]:
    scores, flagged = dict(r.scores or {}), set(r.issues or [])
    out: dict[str, Any] = {
        "sample_id": r.sample_id,
        "dataset": r.dataset,
        "version": r.version,
        "run_id": r.run_id,
        "raw_snapshot_id": r.raw_snapshot_id,
        "modality": r.modality,
        "status": r.status,
        "issues": ",".join(sorted(flagged)),
        "quality_blocked": r.blocked,
        "duplicate_of": r.duplicate_of,
        "duplicate_kind": r.duplicate_kind,
        "duplicate_similarity": r.similarity,
        "auto_label": r.auto_label,
        "auto_label_confidence": r.auto_confidence,
        "auto_label_model": r.auto_model,
        "auto_label_accepted": r.auto_accepted,
        "embedding_model": r.embedding_model,
        "embedded_kinds": ",".join(r.embedded or []) or None,
        "enriched_at": r.created_at or utcnow(),
    }
    for issue in issues:
        out[f"score_{issue}"] = scores.get(issue)
        out[f"flag_{issue}"] = (issue in flagged) if issue in scores else None
    return out


def publish_rows(rt: Runtime, dataset: str, rows: Sequence[Any], *, run_id: str) -> int | None:
    """Append a run's published rows as one snapshot (idempotent per run)."""
    if not rows:
        return None
    schema = enrichment_schema()
    issues = all_issues()
    table = pa.Table.from_pylist([_row(r, issues) for r in rows], schema=schema)
    name = enrichment_table(dataset)
    rt.offline.ensure_table(name, schema)
    return rt.offline.append(name, table, run_id=run_id)


def read_enrichment(rt: Runtime, dataset: str, version: str | None = None, snapshot_id: int | None = None) -> pa.Table:
    """The enrichment table (one version's rows when ``version`` is given)."""
    name = enrichment_table(dataset)
    if name not in rt.offline.tables():
        raise NotFoundError(f"dataset {dataset!r} has no enrichment yet (run `dataops enrich {dataset}`)")
    table = rt.offline.scan(name, snapshot_id)
    if version is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.equal(table.column("version"), version))
    return table


def latest_enrichment(rt: Runtime, dataset: str) -> pa.Table | None:
    """One row per sample: its most recent enrichment, whatever the version."""
    name = enrichment_table(dataset)
    if name not in rt.offline.tables():
        return None
    table = rt.offline.scan(name)
    if table.num_rows == 0:
        return table
    table = table.sort_by([("sample_id", "ascending"), ("enriched_at", "descending")])
    ids = np.asarray(table.column("sample_id").to_pylist(), dtype=object)
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return table.filter(pa.array(first))


def manifest_enrichment_columns() -> tuple[str, ...]:
    """The columns a manifest export gains from the enrichment store."""
    issues = all_issues()
    return (
        "enrichment_version",
        *(f"score_{i}" for i in issues),
        *(f"flag_{i}" for i in issues),
        "issues",
        "auto_label",
        "auto_label_confidence",
        "auto_label_accepted",
        "auto_label_model",
        "duplicate_of",
    )



def join_latest_enrichment(rt: Runtime, dataset: str, manifest: pa.Table) -> pa.Table:
    """``manifest`` with the latest enrichment of each sample left-joined on
    ``sample_id`` (row order kept); unchanged when the dataset has none."""
    latest = latest_enrichment(rt, dataset)
    if latest is None or "sample_id" not in manifest.column_names:
        return manifest
    wanted = [c for c in manifest_enrichment_columns() if c != "enrichment_version"]
    right = latest.select(["sample_id", "version", *[c for c in wanted if c in latest.column_names]])
    right = right.rename_columns(["sample_id", "enrichment_version", *right.column_names[2:]])
    order = pa.array(np.arange(manifest.num_rows, dtype=np.int64))
    left = manifest.append_column("__row", order)
    joined = left.join(right, keys="sample_id", join_type="left outer").sort_by("__row")
    return joined.drop_columns(["__row"])
