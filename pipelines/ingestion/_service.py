"""Ingestion as a function: what the CLI, the demo, the agents' tools and the
tests call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from app.errors import InputError
from pipelines.ingestion._pipeline import IngestionPipeline
from pipelines.ingestion._schema import DatasetSchema, load_schema
from pipelines.ingestion._sources import open_source
from pipelines.runtime import Job, Runner, RunSummary, Runtime, Source
from pipelines.runtime._spec import ProgressFn

__all__ = ["ingest", "ingestion_job", "dataset_schema", "export_manifest", "MANIFEST_COLUMNS"]

MANIFEST_COLUMNS = (
    "sample_id",
    "source",
    "uri",
    "modality",
    "sha256",
    "phash",
    "quality_score",
    "metadata",
)


def dataset_schema(rt: Runtime, dataset: str, schema_path: Path | None = None) -> DatasetSchema:
    """The schema a dataset is checked with: the file given now, else the one
    stored with the dataset, else the permissive default."""
    if schema_path is not None:
        schema = load_schema(schema_path)
        rt.ensure_dataset(dataset, "ingestion", schema_path.read_text(encoding="utf-8"))
        return schema
    row = rt.ensure_dataset(dataset, "ingestion")
    if row.schema_yaml:
        return DatasetSchema.from_yaml(row.schema_yaml, origin=f"dataset {dataset!r}")
    return DatasetSchema.default(dataset)


def ingest(
    rt: Runtime,
    source: str | Source,
    dataset: str,
    *,
    schema_path: Path | None = None,
    progress: ProgressFn | None = None,
    **source_opts: Any,
) -> RunSummary:
    """Ingest ``source`` (a folder, fsspec URL, JSONL file, nats:// or redis://
    stream, or an open Source) into ``dataset``; resumes an interrupted run
    over the same source and skips records already ingested."""
    if not dataset or "/" in dataset:
        raise InputError(f"invalid dataset name {dataset!r}")
    schema = dataset_schema(rt, dataset, schema_path)
    src = open_source(source, **source_opts) if isinstance(source, str) else source
    try:
        return Runner(rt, IngestionPipeline(schema)).run(dataset, src, progress=progress)
    finally:
        if isinstance(source, str):
            src.close()


def export_manifest(rt: Runtime, dataset: str, out: Path) -> int:
    """Write the dataset's manifest (current snapshot) to Parquet; returns rows."""
    rt.dataset(dataset)
    if dataset not in rt.offline.tables():
        table = pa.table({c: pa.array([], type=pa.string()) for c in MANIFEST_COLUMNS})
    else:
        snap = rt.offline.scan(dataset)
        table = snap.select(
            ["sample_id", "source", "uri", "modality", "sha256", "phash_hex", "quality_score", "metadata"]
        ).rename_columns(list(MANIFEST_COLUMNS))
        table = _with_enrichment(rt, dataset, table)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return table.num_rows


def _with_enrichment(rt: Runtime, dataset: str, table: pa.Table) -> pa.Table:
    """Each sample's latest enrichment (scores, flags, auto-label, duplicate-of),
    left-joined when the dataset has been enriched."""
    if f"{dataset}__enrichment" not in rt.offline.tables():
        return table
    from pipelines.enrichment import join_latest_enrichment

    return join_latest_enrichment(rt, dataset, table)


def parse_metadata(value: str | None) -> dict[str, Any]:
    return json.loads(value) if value else {}


def ingestion_job(dataset: str, source: str, *, schema_path: Path | None = None, **source_opts: Any) -> Job:
    """A re-runnable ingestion job, for the supervisor and the live tools."""

    def make_spec(rt: Runtime) -> IngestionPipeline:
        return IngestionPipeline(dataset_schema(rt, dataset, schema_path))

    return Job(
        pipeline="ingestion",
        dataset=dataset,
        source_uri=source,
        open_source=lambda: open_source(source, **source_opts),
        make_spec=make_spec,
    )
