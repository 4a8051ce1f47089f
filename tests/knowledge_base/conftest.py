"""Fixtures for incident-memory tests: one MiniLM model per session, real Chroma."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app.taxonomy import Decision, Outcome, Pipeline, RootCause
from knowledge_base import IncidentMemory, IncidentRecord, MiniLMEmbedder, get_embedder

MakeIncident = Callable[..., IncidentRecord]


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The process-wide embedder, loaded once for the whole session."""
    shared = get_embedder()
    shared.load()
    return shared


@pytest.fixture
def memory(embedder: MiniLMEmbedder) -> Iterator[IncidentMemory]:
    """A fresh, private in-memory incident memory."""
    mem = IncidentMemory.ephemeral(embedder=embedder)
    yield mem
    mem.close()


@pytest.fixture(scope="session")
def seeded_memory(embedder: MiniLMEmbedder) -> Iterator[IncidentMemory]:
    """An in-memory memory holding the shipped seed library (read-only in tests)."""
    mem = IncidentMemory.ephemeral(embedder=embedder)
    mem.seed_if_empty()
    yield mem
    mem.close()


@pytest.fixture
def make_incident() -> MakeIncident:
    """Build an IncidentRecord with sensible defaults; override any field."""

    def make(**fields: Any) -> IncidentRecord:
        values: dict[str, Any] = {
            "id": "inc-1",
            "pipeline": Pipeline.INGESTION,
            "opened_at": datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
            "title": "S3 GetObject timeouts",
            "symptoms": "botocore ReadTimeoutError: Read timeout on endpoint URL while fetching objects",
            "root_cause": RootCause.TRANSIENT_ERROR,
            "playbook": "retry_with_backoff",
            "decision": Decision.AUTO_FIX,
            "outcome": Outcome.RESOLVED,
            "resolution": "retried with backoff",
            "seconds_to_resolve": 120.0,
            "tags": ["s3"],
            "source": "eval",
        }
        values.update(fields)
        return IncidentRecord(**values)

    return make
