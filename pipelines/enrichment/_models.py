"""Metadata tables of the enrichment pipeline: its versions, and each run's
per-record results staged until the run publishes them (to the
``<dataset>__enrichment`` Iceberg table, Zarr arrays and the vector index)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, Text
from sqlmodel import Field, SQLModel

from pipelines.runtime import utcnow

__all__ = ["EnrichmentVersionRow", "EnrichmentSampleRow", "EnrichmentVectorRow", "STAGES"]

# Where a record can leave the pipeline, in order; "store" means it went all the way.
STAGES = ("quality", "dedup", "autolabel", "embed", "store")


class EnrichmentVersionRow(SQLModel, table=True):
    """One enrichment version of a dataset: which models made it, over which raw snapshot."""

    __tablename__ = "enrichment_versions"

    dataset: str = Field(primary_key=True)
    version: str = Field(primary_key=True)
    seq: int = 1  # creation order within the dataset
    embedding_model_version: int
    embedding_model: str
    label_model_version: int
    label_model: str
    raw_snapshot_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    snapshot_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_run_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class EnrichmentSampleRow(SQLModel, table=True):
    """What one run found for one record; quarantined ones too (not published)."""

    __tablename__ = "enrichment_samples"

    dataset: str = Field(primary_key=True)
    version: str = Field(primary_key=True)
    sample_id: str = Field(primary_key=True)
    run_id: str = Field(index=True)
    modality: str
    status: str  # enriched | duplicate | quarantined
    exit_stage: str  # one of STAGES
    blocked: bool = False
    scores: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    issues: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    duplicate_of: str | None = None
    duplicate_kind: str | None = None
    similarity: float | None = None
    auto_label: str | None = None
    auto_confidence: float | None = None
    auto_model: str | None = None
    auto_accepted: bool | None = None
    embedded: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    embedding_model: str | None = None
    reason: str | None = None
    error_model: str | None = None
    detail: str | None = Field(default=None, sa_column=Column(Text))
    raw_snapshot_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    committed: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class EnrichmentVectorRow(SQLModel, table=True):
    """A vector waiting for its run to publish it to Zarr and the vector index."""

    __tablename__ = "enrichment_vectors"

    dataset: str = Field(primary_key=True)
    version: str = Field(primary_key=True)
    sample_id: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)  # image | text | caption | audio | <modality>_signature
    run_id: str = Field(index=True)
    model: str
    dim: int
    data: bytes = Field(sa_column=Column(LargeBinary))
