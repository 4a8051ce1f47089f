"""The enrichment pipeline's tunables and the issues that stop a record early."""

from __future__ import annotations

import re

from app.errors import InputError
from pipelines.runtime import PipelineConfig, tunable

__all__ = ["EnrichmentConfig", "BLOCKING_ISSUES", "PIPELINE", "enrichment_table", "check_version_name"]

PIPELINE = "enrichment"

# A record flagged with one of these is scored and stored but skips dedup,
# auto-labelling and embedding: nobody wants a blurry frame's label or its
# vector in a similarity index. The other issues (grayscale, odd size or
# aspect ratio, too long) describe a record rather than spoil it, so those
# records go on through every stage.
BLOCKING_ISSUES: frozenset[str] = frozenset(
    {
        "blurry",
        "noisy",
        "dark",
        "overexposed",
        "low_information",
        "clipping",
        "silence",
        "low_snr",
        "too_short",
        "repetitive",
        "non_printable",
    }
)

_VERSION = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,30}[A-Za-z0-9])?$")


class EnrichmentConfig(PipelineConfig):
    autolabel_threshold: float = tunable(
        0.90, ge=0.5, le=0.999, description="Accept an auto-label at or above this confidence; below it waits for people."
    )
    dedup_cosine: float = tunable(
        0.97, ge=0.8, le=1.0, description="Cosine similarity at or above which two embeddings are near-duplicates."
    )
    phash_max_distance: int = tunable(
        6, ge=0, le=16, description="Hamming distance within which two images' pHashes are near-duplicates."
    )
    embedding_model_version: int = tunable(
        2, ge=1, le=100, description="Embedding model version in the model registry."
    )
    label_model_version: int = tunable(2, ge=1, le=100, description="Auto-labeler version in the model registry.")
    reenrich_approval_above: int = tunable(
        10_000, ge=0, le=10_000_000, description="A re-enrichment over more samples than this needs a human's approval."
    )


def enrichment_table(dataset: str) -> str:
    """The offline table holding a dataset's enrichment (raw stays untouched)."""
    return f"{dataset}__enrichment"


def check_version_name(version: str) -> str:
    if not isinstance(version, str) or not _VERSION.match(version):
        raise InputError(
            f"invalid enrichment version {version!r}: use 1-32 letters, digits, '.', '_' or '-', starting and ending with a letter or digit (e.g. v2)"
        )
    return version
