"""Incident memory: past incidents and their fixes in Chroma, recalled by similarity.

Also home of the process-wide text embedder (:func:`get_embedder`) that other
pipelines reuse.
"""

from __future__ import annotations

from ._embedding import (
    EMBEDDING_DIM,
    MODEL_NAME,
    MiniLMEmbedder,
    MiniLMEmbeddingFunction,
    get_embedder,
)
from ._memory import DEFAULT_COLLECTION, IncidentMemory
from ._models import OUTCOME_FAILURE, OUTCOME_SUCCESS, IncidentRecord, IncidentSource, Match
from ._seed import load_seed_incidents, parse_seed_incidents

__all__ = [
    "DEFAULT_COLLECTION",
    "EMBEDDING_DIM",
    "MODEL_NAME",
    "OUTCOME_FAILURE",
    "OUTCOME_SUCCESS",
    "IncidentMemory",
    "IncidentRecord",
    "IncidentSource",
    "Match",
    "MiniLMEmbedder",
    "MiniLMEmbeddingFunction",
    "get_embedder",
    "load_seed_incidents",
    "parse_seed_incidents",
]
