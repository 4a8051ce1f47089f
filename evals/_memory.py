"""Incident memory for evals: the shipped seed incidents embedded once per
eval run, and a throwaway copy of them per case.

Each case gets its own in-memory collection holding only the seed incidents
opened before the case's ``started_at`` (the memory cutoff, on top of the
``before=`` the agents pass when they recall), built from the embeddings
computed once, so nothing is re-embedded per case. Whatever the agents learn
during a case goes into that copy and is dropped with it: no case sees
another's incidents, and the shipped memory is never touched.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

from knowledge_base import IncidentMemory, IncidentRecord, MiniLMEmbedder, MiniLMEmbeddingFunction, get_embedder

__all__ = ["EvalMemory"]


class _CachedEmbedder(MiniLMEmbedder):
    """The shared embedder behind a cache of recent texts: an incident's
    recall text is embedded once for diagnosis and once more for the gate's
    success rate, and every repetition of a case asks the same again."""

    def __init__(self, inner: MiniLMEmbedder, *, size: int = 4096) -> None:
        super().__init__()
        self._inner = inner
        self._size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def is_loaded(self) -> bool:
        return self._inner.is_loaded

    @property
    def device(self) -> str:
        return self._inner.device

    def load(self) -> None:
        self._inner.load()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = list(texts)
        missing = list(dict.fromkeys(t for t in items if t not in self._cache))
        if missing:
            for text, vector in zip(missing, self._inner.embed(missing), strict=True):
                self._cache[text] = vector
                if len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        for text in items:
            if text in self._cache:
                self._cache.move_to_end(text)
        if not items:
            return self._inner.embed([])
        return np.stack([self._cache[t] if t in self._cache else self._inner.embed([t])[0] for t in items])


class EvalMemory:
    """Seed incidents embedded once; :meth:`for_case` hands out private copies."""

    def __init__(self, incidents: Sequence[IncidentRecord] | None = None, *, embedder: MiniLMEmbedder | None = None) -> None:
        from knowledge_base import load_seed_incidents

        self._embedder = _CachedEmbedder(embedder or get_embedder())
        self._client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
        base = f"eval-seed-{uuid.uuid4().hex}"
        seed = IncidentMemory(client=self._client, collection=base, embedder=self._embedder)
        seed.record_many(list(incidents) if incidents is not None else load_seed_incidents())
        got = self._collection(base).get(include=["embeddings", "documents", "metadatas"])
        self._ids: list[str] = list(got["ids"])
        self._embeddings: list[Any] = list(got["embeddings"] if got["embeddings"] is not None else [])
        self._documents: list[str] = list(got["documents"] or [])
        self._metadatas: list[Any] = list(got["metadatas"] or [])
        self._opened = [datetime.fromisoformat(str(m["opened_at"])) for m in self._metadatas]
        self._client.delete_collection(base)

    def __len__(self) -> int:
        return len(self._ids)

    def _collection(self, name: str, *, create: bool = False) -> Any:
        ef = MiniLMEmbeddingFunction(self._embedder)
        if create:
            return self._client.create_collection(
                name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=ef  # type: ignore[arg-type]
            )
        return self._client.get_collection(name, embedding_function=ef)  # type: ignore[arg-type]

    @contextmanager
    def for_case(self, started_at: datetime) -> Iterator[IncidentMemory]:
        """A private memory with the seed incidents opened before ``started_at``."""
        name = f"eval-case-{uuid.uuid4().hex}"
        collection = self._collection(name, create=True)
        keep = [i for i, opened in enumerate(self._opened) if opened < started_at]
        if keep:
            collection.add(
                ids=[self._ids[i] for i in keep],
                embeddings=[self._embeddings[i] for i in keep],
                documents=[self._documents[i] for i in keep],
                metadatas=[self._metadatas[i] for i in keep],
            )
        try:
            yield IncidentMemory(client=self._client, collection=name, embedder=self._embedder)
        finally:
            self._client.delete_collection(name)
