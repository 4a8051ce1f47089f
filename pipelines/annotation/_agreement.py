"""Inter-annotator agreement: Cohen's kappa, Fleiss' kappa and Krippendorff's alpha.

Plain numpy, so the pipeline carries no statistics package at run time; the
tests hold each one to the reference implementation (scikit-learn,
statsmodels, krippendorff) on random ratings.

Degenerate inputs get a defined value where one is meaningful: when every
rating falls in one category, chance agreement is 1 and the kappa/alpha
ratio is 0/0; we return 1.0 there (the raters never disagreed) instead of
NaN, so a monitor never sees a NaN gauge. Input with nothing to compare
(no pairs, no unit rated twice) is an :class:`InputError`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from app.errors import InputError

__all__ = ["Level", "cohen_kappa", "ratings_table", "fleiss_kappa", "krippendorff_alpha"]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
_LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval", "ratio")


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _ordered(values: Sequence[Hashable]) -> list[Hashable]:
    """Distinct values, sorted when they compare, else in first-seen order."""
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct)  # type: ignore[type-var]
    except TypeError:
        return distinct


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two raters who labelled the same items, in order."""
    if len(a) != len(b):
        raise InputError(f"cohen_kappa needs two equally long rating lists, got {len(a)} and {len(b)}")
    if not a:
        raise InputError("cohen_kappa needs at least one rated item")
    if any(_is_missing(v) for v in (*a, *b)):
        raise InputError("cohen_kappa needs a rating from both raters for every item (found a missing one)")
    cats = _ordered([*a, *b])
    index = {c: i for i, c in enumerate(cats)}
    ia = np.fromiter((index[v] for v in a), dtype=np.intp, count=len(a))
    ib = np.fromiter((index[v] for v in b), dtype=np.intp, count=len(b))
    confusion = np.zeros((len(cats), len(cats)), dtype=np.float64)
    np.add.at(confusion, (ia, ib), 1.0)
    n = confusion.sum()
    p_observed = np.trace(confusion) / n
    p_expected = float((confusion.sum(axis=1) / n) @ (confusion.sum(axis=0) / n))
    if p_expected >= 1.0:
        return 1.0  # both raters used one and the same category throughout
    return float((p_observed - p_expected) / (1.0 - p_expected))


def ratings_table(ratings: Sequence[Sequence[Hashable | None]]) -> tuple[np.ndarray, list[Hashable]]:
    """Per subject its raters' labels (``None`` = no rating) as a subjects x
    categories count table, with the categories in column order."""
    present = [[v for v in subject if not _is_missing(v)] for subject in ratings]
    cats = _ordered([v for subject in present for v in subject])
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(present), len(cats)), dtype=np.int64)
    for row, subject in enumerate(present):
        for v in subject:
            table[row, index[v]] += 1
    return table, cats


def fleiss_kappa(table: ArrayLike) -> float:
    """Fleiss' kappa of a subjects x categories count table where every
    subject has the same number (>= 2) of ratings."""
    counts = np.asarray(table, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0 or counts.shape[1] == 0:
        raise InputError(f"fleiss_kappa needs a non-empty subjects x categories table, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise InputError("fleiss_kappa needs non-negative whole counts")
    per_subject = counts.sum(axis=1)
    raters = per_subject[0]
    if np.any(per_subject != raters):
        raise InputError(
            f"fleiss_kappa needs the same number of ratings per subject, got between "
            f"{int(per_subject.min())} and {int(per_subject.max())} (use krippendorff_alpha for missing ratings)"
        )
    if raters < 2:
        raise InputError(f"fleiss_kappa needs at least 2 ratings per subject, got {int(raters)}")
    p_category = counts.sum(axis=0) / counts.sum()
    p_subject = ((counts * counts).sum(axis=1) - raters) / (raters * (raters - 1.0))
    p_mean = float(p_subject.mean())
    p_expected = float((p_category * p_category).sum())
    if p_expected >= 1.0:
        return 1.0  # every rating in one category
    return (p_mean - p_expected) / (1.0 - p_expected)


def _as_reliability(data: ArrayLike, level: Level) -> np.ndarray:
    """Raters x units as float with NaN for missing; nominal labels of any
    hashable type are coded as numbers first."""
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise InputError(f"krippendorff_alpha needs raters x units data, got {arr.ndim} dimension(s)")
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    if level != "nominal":
        raise InputError(f"krippendorff_alpha at the {level} level needs numeric ratings, got {arr.dtype}")
    flat = arr.ravel().tolist()
    cats = _ordered([v for v in flat if not _is_missing(v)])
    index = {c: float(i) for i, c in enumerate(cats)}
    coded = [np.nan if _is_missing(v) else index[v] for v in flat]
    return np.asarray(coded, dtype=np.float64).reshape(arr.shape)


def _distances(domain: np.ndarray, n_v: np.ndarray, level: Level) -> np.ndarray:
    a, b = domain[:, None], domain[None, :]
    if level == "nominal":
        return (a != b).astype(np.float64)
    if level == "interval":
        return (a - b) ** 2
    if level == "ratio":
        total = a + b
        diff = np.broadcast_to(a - b, total.shape)
        return np.divide(diff, total, out=np.zeros(total.shape), where=total != 0) ** 2
    # ordinal: the mass of values between the two ranks, inclusive, less half of each end
    cumulative = np.concatenate(([0.0], np.cumsum(n_v)))
    idx = np.arange(len(domain))
    lo, hi = np.minimum(idx[:, None], idx[None, :]), np.maximum(idx[:, None], idx[None, :])
    between = cumulative[hi + 1] - cumulative[lo]
    return (between - (n_v[lo] + n_v[hi]) / 2.0) ** 2


def krippendorff_alpha(data: ArrayLike, level: Level = "nominal") -> float:
    """Krippendorff's alpha of raters x units ratings, ``np.nan`` (or ``None``)
    where a rater gave none; units rated fewer than twice do not count."""
    if level not in _LEVELS:
        raise InputError(f"unknown level of measurement {level!r}; use one of {', '.join(_LEVELS)}")
    values = _as_reliability(data, level)
    if not np.all(np.isfinite(values[~np.isnan(values)])):
        raise InputError("krippendorff_alpha ratings must be finite numbers or NaN")
    domain = np.unique(values[~np.isnan(values)])
    # units x values: how many raters gave each value to each unit
    counts = (values.T[:, :, None] == domain[None, None, :]).sum(axis=1).astype(np.float64)
    per_unit = counts.sum(axis=1)
    pairable = per_unit >= 2
    if not np.any(pairable):
        raise InputError("krippendorff_alpha needs at least one unit rated by two or more raters")
    counts, per_unit = counts[pairable], per_unit[pairable]
    weighted = counts / (per_unit - 1.0)[:, None]
    observed = weighted.T @ counts - np.diag(weighted.sum(axis=0))
    n_v = observed.sum(axis=0)
    n = n_v.sum()
    expected = (np.outer(n_v, n_v) - np.diag(n_v)) / (n - 1.0)
    dist = _distances(domain, n_v, level)
    disagreement_expected = float((expected * dist).sum())
    if disagreement_expected == 0.0:
        return 1.0  # every pairable rating is the same value
    return 1.0 - float((observed * dist).sum()) / disagreement_expected
