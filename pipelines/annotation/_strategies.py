"""Active-learning selection: which pool samples go to people first.

The queue's order is "uncertain > diverse > random": the samples the model
is least sure about, then samples far from everything already labelled
(k-center greedy core-set), then a random share that keeps the estimate of
the model's accuracy honest.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.errors import InputError

__all__ = [
    "Strategy",
    "UncertaintyMeasure",
    "STRATEGIES",
    "uncertainty_scores",
    "k_center_greedy",
    "MixShares",
    "split_shares",
    "select_batch",
]

Strategy = Literal["uncertainty", "diversity", "random", "mixed"]
UncertaintyMeasure = Literal["least_confidence", "margin", "entropy"]
STRATEGIES: tuple[Strategy, ...] = ("uncertainty", "diversity", "random", "mixed")
_MEASURES: tuple[UncertaintyMeasure, ...] = ("least_confidence", "margin", "entropy")
_CHUNK = 2048  # rows of the labelled set per distance block: bounds memory at pool x 2048 floats


def _check_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] == 0:
        raise InputError(f"probabilities must be a samples x classes array, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise InputError("probabilities must be finite and non-negative")
    return p


def uncertainty_scores(probs: np.ndarray, measure: UncertaintyMeasure = "margin") -> np.ndarray:
    """One score per row of ``probs`` (samples x classes); higher = more uncertain.

    least_confidence: 1 - top probability; margin: 1 - (top - second);
    entropy: Shannon entropy divided by log(classes), so all three lie in [0, 1].
    """
    p = _check_probs(probs)
    if measure == "least_confidence":
        return 1.0 - p.max(axis=1)
    if measure == "margin":
        if p.shape[1] == 1:
            return 1.0 - p[:, 0]
        top2 = -np.partition(-p, 1, axis=1)[:, :2]
        return 1.0 - (top2[:, 0] - top2[:, 1])
    if measure == "entropy":
        if p.shape[1] == 1:
            return np.zeros(p.shape[0])
        logs = np.log(p, out=np.zeros_like(p), where=p > 0)
        return -(p * logs).sum(axis=1) / np.log(p.shape[1])
    raise InputError(f"unknown uncertainty measure {measure!r}; use one of {', '.join(_MEASURES)}")


def _check_embeddings(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{what} must be a samples x dimensions array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} must be finite")
    return arr


def _min_sq_dist(pool: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared distance from each pool row to its nearest center."""
    best = np.full(pool.shape[0], np.inf)
    pool_sq = (pool * pool).sum(axis=1)
    for start in range(0, centers.shape[0], _CHUNK):
        block = centers[start : start + _CHUNK]
        d = pool_sq[:, None] - 2.0 * pool @ block.T + (block * block).sum(axis=1)[None, :]
        np.minimum(best, d.min(axis=1), out=best)
    return np.maximum(best, 0.0)


def k_center_greedy(pool: np.ndarray, n: int, *, labeled: np.ndarray | None = None) -> np.ndarray:
    """Greedy k-center core-set: each pick is the pool row farthest from every
    labelled row and every earlier pick. Without labelled rows the first pick
    is the row nearest the pool's mean. Returns distinct indices into ``pool``."""
    x = _check_embeddings(pool, "pool embeddings")
    if n < 0:
        raise InputError(f"cannot select {n} samples")
    count = min(n, x.shape[0])
    if count == 0:
        return np.zeros(0, dtype=np.intp)
    if labeled is not None and np.asarray(labeled).size:
        lab = _check_embeddings(labeled, "labelled embeddings")
        if lab.shape[1] != x.shape[1]:
            raise InputError(f"labelled embeddings have {lab.shape[1]} dimensions, the pool {x.shape[1]}")
        dist = _min_sq_dist(x, lab)
    else:
        dist = _min_sq_dist(x, x.mean(axis=0, keepdims=True))
        dist = -dist  # so that argmax picks the row nearest the mean first
    picks = np.empty(count, dtype=np.intp)
    x_sq = (x * x).sum(axis=1)
    for i in range(count):
        j = int(np.argmax(dist))
        picks[i] = j
        if i == 0 and (labeled is None or not np.asarray(labeled).size):
            dist = np.full(x.shape[0], np.inf)
        d_new = np.maximum(x_sq - 2.0 * x @ x[j] + x_sq[j], 0.0)
        np.minimum(dist, d_new, out=dist)
        dist[picks[: i + 1]] = -np.inf  # never pick a row twice, even among duplicates
    return picks


class MixShares(BaseModel):
    """How a mixed batch splits between the three strategies; sums to 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uncertain: float = Field(0.6, ge=0.0, le=1.0)
    diverse: float = Field(0.3, ge=0.0, le=1.0)
    random: float = Field(0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> MixShares:
        total = self.uncertain + self.diverse + self.random
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"mix shares must sum to 1, got {total:g}")
        return self


def split_shares(n: int, shares: MixShares) -> tuple[int, int, int]:
    """``n`` split by ``shares`` into whole counts that sum to ``n`` (largest
    remainder; ties go to the earlier strategy)."""
    raw = [n * shares.uncertain, n * shares.diverse, n * shares.random]
    counts = [int(np.floor(r + 1e-9)) for r in raw]
    order = sorted(range(3), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts[0], counts[1], counts[2]


def _pool_size(probs: np.ndarray | None, embeddings: np.ndarray | None) -> int:
    sizes = {np.asarray(a).shape[0] for a in (probs, embeddings) if a is not None}
    if not sizes:
        raise InputError("select_batch needs probabilities or embeddings to know the pool")
    if len(sizes) > 1:
        raise InputError(f"probabilities and embeddings disagree on the pool size: {sorted(sizes)}")
    return sizes.pop()


def _top_uncertain(probs: np.ndarray, n: int, measure: UncertaintyMeasure, among: np.ndarray) -> np.ndarray:
    scores = uncertainty_scores(probs, measure)[among]
    order = np.argsort(-scores, kind="stable")
    return among[order[:n]]


def select_batch(
    strategy: Strategy,
    n: int,
    *,
    rng: np.random.Generator,
    probs: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    labeled_embeddings: np.ndarray | None = None,
    shares: MixShares | None = None,
    measure: UncertaintyMeasure = "margin",
) -> np.ndarray:
    """Distinct indices into the pool (the rows of ``probs`` / ``embeddings``),
    ``min(n, pool size)`` of them, most valuable first.

    ``uncertainty`` needs ``probs``, ``diversity`` needs ``embeddings``;
    ``random`` needs either (for the pool size). ``mixed`` takes the uncertain
    share first, then the diverse share among the rest (far from the labelled
    rows and the uncertain picks), then the random share. Before a model
    exists (no ``probs``) its uncertain share goes to diversity, and without
    embeddings the diverse share goes to random.
    """
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if n < 0:
        raise InputError(f"cannot select {n} samples")
    size = _pool_size(probs, embeddings)
    count = min(n, size)
    everything = np.arange(size, dtype=np.intp)
    if strategy == "uncertainty":
        if probs is None:
            raise InputError("the uncertainty strategy needs model probabilities")
        return _top_uncertain(probs, count, measure, everything)
    if strategy == "diversity":
        if embeddings is None:
            raise InputError("the diversity strategy needs embeddings")
        return k_center_greedy(embeddings, count, labeled=labeled_embeddings)
    if strategy == "random":
        return rng.choice(size, size=count, replace=False).astype(np.intp)

    n_unc, n_div, n_rnd = split_shares(count, shares or MixShares())
    if probs is None:
        n_unc, n_div = 0, n_div + n_unc
    if embeddings is None:
        n_div, n_rnd = 0, n_rnd + n_div
    picked = _top_uncertain(probs, n_unc, measure, everything) if probs is not None and n_unc else everything[:0]
    rest = np.setdiff1d(everything, picked, assume_unique=True)
    if embeddings is not None and n_div:
        emb = _check_embeddings(embeddings, "embeddings")
        known = [emb[picked]]
        if labeled_embeddings is not None and np.asarray(labeled_embeddings).size:
            lab = _check_embeddings(labeled_embeddings, "labelled embeddings")
            if lab.shape[1] != emb.shape[1]:
                raise InputError(f"labelled embeddings have {lab.shape[1]} dimensions, the pool {emb.shape[1]}")
            known.insert(0, lab)
        anchor = np.concatenate(known) if sum(k.shape[0] for k in known) else None
        diverse = rest[k_center_greedy(emb[rest], n_div, labeled=anchor)]
        picked = np.concatenate([picked, diverse])
        rest = np.setdiff1d(rest, diverse, assume_unique=True)
    if n_rnd:
        picked = np.concatenate([picked, rng.choice(rest, size=n_rnd, replace=False)])
    return picked.astype(np.intp)
