"""Duplicate detection across everything ingested, in three tiers, cheapest first.

1. exact: the same bytes (SHA-256) in any dataset;
2. perceptual: images whose pHashes are within ``phash_max_distance`` bits
   (ingestion's multi-index ``NearDupIndex`` over every dataset's samples);
3. embedding: a cosine similarity of at least ``dedup_cosine`` between
   signature embeddings (``ModelVersion.signature_model``: the version's own
   embedding unless it is CLIP) of this run's originals and every stored
   array made by the same model, in any dataset and version.

Tiers 1-2 see every ingested sample, so the earlier-ingested copy is always
the original (ties broken by key): enriching dataset B before A still links
B's copy to A's. Tier 3 only sees what was enriched (an original is never a
duplicate, so two samples can never point at each other). A sample never
matches itself, not even in another version of its own dataset.

Tier 3 is a brute-force product with every stored vector of the model (a
few milliseconds per batch per hundred thousand vectors); past a few
million per modality it would want the Chroma index instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from sqlmodel import Session, col, select

from pipelines.enrichment._models_registry import MODALITIES, ModelVersion
from pipelines.enrichment._vectors import VectorStore
from pipelines.runtime import Runtime, SampleRow

if TYPE_CHECKING:
    from pipelines.ingestion import NearDupIndex

__all__ = ["DedupIndex", "sample_key", "link_of"]

_Order = tuple[datetime, str]


def sample_key(dataset: str, sample_id: str) -> str:
    return f"{dataset}/{sample_id}"


def link_of(own_dataset: str, key: str) -> str:
    """``duplicate_of`` as stored: a bare sample id within the dataset,
    ``<dataset>/<sample_id>`` across datasets."""
    dataset, _, sample_id = key.partition("/")
    return sample_id if dataset == own_dataset else key


class DedupIndex:
    def __init__(self, rt: Runtime, dataset: str) -> None:
        self.rt = rt
        self.dataset = dataset
        from pipelines.ingestion import NearDupIndex

        self.phash: NearDupIndex = NearDupIndex()
        self._order: dict[str, _Order] = {}
        self._cos_keys: dict[str, list[str]] = {}
        self._cos_buf: dict[str, np.ndarray] = {}  # rows [0, len(keys)) are in use
        self._positions: dict[str, dict[str, list[int]]] = {}

    # -- loading -----------------------------------------------------------
    def load(self, vectors: VectorStore, embedding: ModelVersion) -> DedupIndex:
        from pipelines.ingestion import to_unsigned

        with Session(self.rt.engine) as s:
            rows = s.exec(select(SampleRow.dataset, SampleRow.sample_id, SampleRow.phash, SampleRow.created_at))
            pairs = []
            for dataset, sample_id, ph, created in rows:
                key = sample_key(dataset, sample_id)
                self._order[key] = (created, key)
                if ph is not None:
                    pairs.append((key, to_unsigned(ph)))
        self.phash.add_many(pairs)
        self.phash.compact()
        for modality in MODALITIES:
            model = embedding.signature_model(modality)
            kinds = (modality, f"{modality}_signature")
            for dataset, _version, ids, vecs in vectors.arrays_with_model(model, kinds):
                self._add(modality, [sample_key(dataset, i) for i in ids], vecs)
        return self

    def _earlier(self, other: str, own: str) -> bool:
        mine, theirs = self._order.get(own), self._order.get(other)
        if theirs is None:
            return False
        return mine is None or theirs < mine

    # -- tiers 1 and 2 -----------------------------------------------------
    def exact(self, shas: Sequence[str]) -> dict[str, list[str]]:
        """``{sha256: [keys of samples holding those bytes]}`` in every dataset."""
        found: dict[str, list[str]] = {}
        if not shas:
            return found
        with Session(self.rt.engine) as s:
            rows = s.exec(
                select(SampleRow.sha256, SampleRow.dataset, SampleRow.sample_id).where(col(SampleRow.sha256).in_(list(set(shas))))
            )
            for sha, dataset, sample_id in rows:
                found.setdefault(sha, []).append(sample_key(dataset, sample_id))
        return found

    def original_by_bytes(self, own: str, holders: Sequence[str]) -> str | None:
        earlier = [k for k in holders if k != own and self._earlier(k, own)]
        return min(earlier, key=lambda k: self._order[k]) if earlier else None

    def original_by_phash(self, own: str, h: int, radius: int) -> tuple[str, int] | None:
        for key, distance in self.phash.query(h, radius):
            if key != own and self._earlier(key, own):
                return key, distance
        return None

    # -- tier 3 ------------------------------------------------------------
    def match_batch(
        self, modality: str, keys: Sequence[str], vectors: np.ndarray, threshold: float
    ) -> list[tuple[str, float] | None]:
        """For each row, in order, its most similar original at or above
        ``threshold`` (stored ones, then earlier originals of this batch), or
        None; the rows without a match become originals themselves."""
        base_keys = self._cos_keys.get(modality, [])
        buf = self._cos_buf.get(modality)
        usable = buf is not None and base_keys and buf.shape[1] == vectors.shape[1]
        against = (vectors @ buf[: len(base_keys)].T) if usable and buf is not None else None
        within = vectors @ vectors.T
        out: list[tuple[str, float] | None] = []
        originals: list[int] = []
        for i, own in enumerate(keys):
            best: tuple[str, float] | None = None
            if against is not None:
                row = against[i].copy()
                for pos in self._positions.get(modality, {}).get(own, ()):
                    row[pos] = -np.inf
                j = int(np.argmax(row))
                if np.isfinite(row[j]):
                    best = (base_keys[j], float(row[j]))
            for j in originals:
                if best is None or within[i, j] > best[1]:
                    best = (keys[j], float(within[i, j]))
            if best is not None and best[1] >= threshold:
                out.append(best)
            else:
                out.append(None)
                originals.append(i)
        self._add(modality, [keys[i] for i in originals], vectors[originals])
        return out

    def _add(self, modality: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Append rows; the buffer doubles when full, so a run's batches cost
        amortised O(rows) to add, not a copy of the whole index each time."""
        if not keys:
            return
        base_keys = self._cos_keys.setdefault(modality, [])
        positions = self._positions.setdefault(modality, {})
        n, need, dim = len(base_keys), len(base_keys) + len(keys), vectors.shape[1]
        buf = self._cos_buf.get(modality)
        if buf is not None and buf.shape[1] != dim:
            return  # another model's vectors cannot be compared; same-model arrays always agree
        if buf is None or buf.shape[0] < need:
            grown = np.empty((max(need, 2 * (0 if buf is None else buf.shape[0]), 1024), dim), dtype=np.float32)
            if buf is not None:
                grown[:n] = buf[:n]
            buf = self._cos_buf[modality] = grown
        buf[n:need] = vectors
        for offset, key in enumerate(keys):
            positions.setdefault(key, []).append(n + offset)
        base_keys.extend(keys)
