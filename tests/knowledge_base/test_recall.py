"""Recall over the shipped seed library: symptoms worded differently find the right root cause."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.taxonomy import Pipeline, RootCause
from knowledge_base import IncidentMemory

CASES = [
    ("CUDA out of memory while embedding batch", RootCause.RESOURCE_EXHAUSTION),
    ("pod killed by kubernetes for exceeding its memory limit, exit code 137", RootCause.RESOURCE_EXHAUSTION),
    ("S3 requests are being rate limited, a few object downloads fail and then succeed", RootCause.TRANSIENT_ERROR),
    ("upstream parquet files have a renamed column, arrow schema mismatch", RootCause.SCHEMA_CHANGE),
    ("personal email addresses and phone numbers detected in caption text", RootCause.PII_EXPOSURE),
    ("annotators disagree with each other, agreement score kappa is low", RootCause.ANNOTATION_QUALITY),
    ("wrong region in bucket configuration after deploy, every list request fails", RootCause.CONFIG_ERROR),
    ("a replay sent old events again and the duplicate rate spiked", RootCause.DUPLICATE_FLOOD),
    ("table snapshot references deleted data files, reads fail after concurrent commits", RootCause.DATA_CORRUPTION),
]


@pytest.mark.parametrize("query,cause", CASES, ids=[c.value + ":" + q[:24] for q, c in CASES])
def test_reworded_symptoms_find_the_root_cause(seeded_memory: IncidentMemory, query: str, cause: RootCause) -> None:
    matches = seeded_memory.similar(query, k=3)
    assert matches[0].incident.root_cause is cause, [(m.incident.id, round(m.similarity, 3)) for m in matches]


def test_seeded_search_respects_cutoff_and_pipeline(seeded_memory: IncidentMemory) -> None:
    cutoff = datetime(2025, 6, 1, tzinfo=UTC)
    matches = seeded_memory.similar("GPU out of memory", k=10, before=cutoff, pipeline="enrichment")
    assert matches
    assert all(m.incident.opened_at < cutoff for m in matches)
    assert all(m.incident.pipeline is Pipeline.ENRICHMENT for m in matches)


def test_seeded_success_rate_reflects_failures(seeded_memory: IncidentMemory) -> None:
    result = seeded_memory.success_rate("CUDA out of memory on the GPU, batch too large", "reduce_batch_size")
    assert result is not None
    rate, n = result
    assert n >= 2
    assert 0.0 < rate < 1.0  # the seed library holds both a fix and a failed attempt
