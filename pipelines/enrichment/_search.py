"""Similarity search over a dataset's enrichment: by text (against text and
caption embeddings, and against image embeddings when they come from CLIP)
or by example (a sample's own vector, in its own kind's index)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlmodel import Session, col, select

from app.errors import InputError, NotFoundError
from pipelines.enrichment._embed import ClipEmbedder, MiniLMTextEmbedder
from pipelines.enrichment._models import EnrichmentSampleRow, EnrichmentVersionRow
from pipelines.enrichment._service import version_row
from pipelines.enrichment._vectors import VectorHit, VectorStore
from pipelines.runtime import Runtime

__all__ = ["SearchHit", "search_text", "search_like"]

_TEXT_KINDS = ("text", "caption")


@dataclass(frozen=True)
class SearchHit:
    sample_id: str
    similarity: float
    kind: str
    modality: str
    uri: str | None
    source: str | None
    version: str


def _check_k(k: int) -> None:
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")


def _hits(rt: Runtime, row: EnrichmentVersionRow, found: list[VectorHit], k: int) -> list[SearchHit]:
    best: dict[str, VectorHit] = {}
    for h in sorted(found, key=lambda h: -h.similarity):
        best.setdefault(h.sample_id, h)
    top = list(best.values())[:k]
    with Session(rt.engine) as s:
        rows = {
            r.sample_id: r
            for r in s.exec(
                select(EnrichmentSampleRow).where(
                    EnrichmentSampleRow.dataset == row.dataset,
                    EnrichmentSampleRow.version == row.version,
                    col(EnrichmentSampleRow.sample_id).in_([h.sample_id for h in top]),
                )
            )
        }
    out = []
    for h in top:
        r = rows.get(h.sample_id)
        meta = r.meta if r is not None else {}
        out.append(
            SearchHit(
                sample_id=h.sample_id,
                similarity=round(h.similarity, 6),
                kind=h.kind,
                modality=r.modality if r is not None else "",
                uri=meta.get("uri"),
                source=meta.get("source"),
                version=row.version,
            )
        )
    return out


def search_text(rt: Runtime, dataset: str, query: str, *, k: int = 10, version: str | None = None) -> list[SearchHit]:
    """The ``k`` samples whose text, caption (or CLIP image) embedding is most
    similar to ``query``, most similar first."""
    _check_k(k)
    if not query.strip():
        raise InputError("the search text is empty")
    row = version_row(rt, dataset, version)
    store = VectorStore(rt.settings)
    kinds = store.kinds(dataset, row.version)
    found: list[VectorHit] = []
    searched = [kind for kind in _TEXT_KINDS if kinds.get(kind) == "minilm"]
    if searched:
        vector = MiniLMTextEmbedder().embed([query])[0]
        for kind in searched:
            found += store.query(dataset, row.version, kind, vector, k)
    if kinds.get("image") == "clip" and rt.settings.clip_model_path is not None:
        searched.append("image")
        found += store.query(dataset, row.version, "image", ClipEmbedder(rt.settings.clip_model_path).embed_text([query])[0], k)
    if not searched:
        raise NotFoundError(
            f"{dataset} {row.version} has no text, caption or CLIP image embeddings to search by text "
            f"(search by example with --like SAMPLE_ID)"
        )
    return _hits(rt, row, found, k)


def search_like(rt: Runtime, dataset: str, sample_id: str, *, k: int = 10, version: str | None = None) -> list[SearchHit]:
    """The ``k`` samples nearest to ``sample_id`` in the index of its own
    embedding (its modality's first, else its caption's); never itself."""
    _check_k(k)
    row = version_row(rt, dataset, version)
    with Session(rt.engine) as s:
        sample = s.get(EnrichmentSampleRow, (dataset, row.version, sample_id))
    if sample is None:
        raise NotFoundError(f"sample {sample_id!r} is not in {dataset} {row.version}")
    store = VectorStore(rt.settings)
    for kind in (sample.modality, "caption"):
        vector = store.vector_of(dataset, row.version, kind, sample_id)
        if vector is not None:
            return _hits(rt, row, store.query(dataset, row.version, kind, np.asarray(vector), k, exclude=sample_id), k)
    if sample.blocked:
        why = f"quality issues {', '.join(sample.issues)} stopped it before embedding"
    elif sample.status != "enriched":
        why = f"it is a {sample.status} record"
    else:
        why = "it has no embedding"
    raise NotFoundError(f"sample {sample_id!r} of {dataset} {row.version} is not in the vector index ({why})")
