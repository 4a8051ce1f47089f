"""Enrichment: quality scores, deduplication, auto-labels and embeddings for
ingested data, in a store of its own (raw data stays immutable), with a
vector index for similarity search."""

from pipelines.enrichment._config import BLOCKING_ISSUES, EnrichmentConfig, enrichment_table
from pipelines.enrichment._embed import DescriptorEmbedder, LogMelEmbedder, MiniLMTextEmbedder
from pipelines.enrichment._models import EnrichmentSampleRow, EnrichmentVectorRow, EnrichmentVersionRow
from pipelines.enrichment._models_registry import ModelRegistry, ModelVersion
from pipelines.enrichment._pipeline import EnrichmentPipeline
from pipelines.enrichment._quality import (
    AUDIO_ISSUES,
    IMAGE_ISSUES,
    TEXT_ISSUES,
    QualityReport,
    QualityThresholds,
    score_audio,
    score_images,
    score_texts,
)
from pipelines.enrichment._report import render_report, write_report
from pipelines.enrichment._result import EnrichmentResult, StageCount
from pipelines.enrichment._search import SearchHit, search_like, search_text
from pipelines.enrichment._service import (
    EnrichmentJob,
    enrich,
    enrichment_job,
    latest_version,
    reenrich,
    reenrich_estimate,
    versions,
)
from pipelines.enrichment._store import (
    join_latest_enrichment,
    latest_enrichment,
    manifest_enrichment_columns,
    read_enrichment,
)
from pipelines.enrichment._vectors import VectorStore

__all__ = [
    # quality scoring
    "AUDIO_ISSUES",
    "IMAGE_ISSUES",
    "TEXT_ISSUES",
    "QualityReport",
    "QualityThresholds",
    "score_audio",
    "score_images",
    "score_texts",
    # the pipeline
    "BLOCKING_ISSUES",
    "EnrichmentConfig",
    "EnrichmentPipeline",
    "EnrichmentJob",
    "EnrichmentResult",
    "StageCount",
    "enrich",
    "enrichment_job",
    "reenrich",
    "reenrich_estimate",
    "versions",
    "latest_version",
    # models
    "ModelRegistry",
    "ModelVersion",
    "DescriptorEmbedder",
    "LogMelEmbedder",
    "MiniLMTextEmbedder",
    # the store
    "enrichment_table",
    "read_enrichment",
    "latest_enrichment",
    "join_latest_enrichment",
    "manifest_enrichment_columns",
    "VectorStore",
    "EnrichmentVersionRow",
    "EnrichmentSampleRow",
    "EnrichmentVectorRow",
    # search and reports
    "SearchHit",
    "search_text",
    "search_like",
    "render_report",
    "write_report",
]
