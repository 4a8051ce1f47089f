"""The statistics of drift detection, vectorised with numpy.

Numeric columns are compared in blocks: a 2-D array holds several columns
that have the same number of values (one row per column), so each step below
is one numpy call for the whole block, never a Python loop over values.

* **KS**: each row of reference and current is sorted (SIMD sort), the two
  sorted runs are merged by a stable argsort (timsort merges two runs in
  linear time), and one pass over the merged order gives the two empirical
  CDFs (cumulative counts) at the end of every run of equal values, where
  the largest gap is read. The statistic is the float scipy computes
  (``scipy.stats.ks_2samp``: same counts, same divisions), and so is the
  p-value (``method="auto"``: exact below 10,000 rows a side, Smirnov's
  asymptotic ``kstwo`` distribution above; see :func:`ks_pvalue`).
* **PSI**: bins are the reference's quantiles (numpy's "linear" method),
  counted by binary search in the sorted rows.
* **chi-square**: ``scipy.stats.chi2_contingency`` on the 2 x K table of
  category counts (with its default Yates correction when K = 2).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.errors import InputError

__all__ = [
    "KSResult",
    "ks_test",
    "ks_pvalue",
    "ks_statistics",
    "psi",
    "psi_numeric",
    "psi_categorical",
    "quantile_edges",
    "binned_counts",
    "category_counts",
    "chi_square",
]

KSMethod = Literal["auto", "exact", "asymp"]
_MAX_AUTO_N = 10000  # scipy's: "auto" is exact when both samples have at most this many values


class KSResult(NamedTuple):
    statistic: float
    p_value: float


# --- KS statistic --------------------------------------------------------------
def ks_statistics(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The two-sided KS statistic of each row pair.

    ``xs`` (C, n1) and ``ys`` (C, n2) hold one column per row, each row sorted
    ascending, without NaN. Returns C floats, each equal to the statistic
    ``scipy.stats.ks_2samp`` computes (before its exact-mode rounding, which
    :func:`ks_pvalue` applies).
    """
    c, n1 = xs.shape
    n2 = ys.shape[1]
    merged = np.concatenate([xs, ys], axis=1)
    order = np.argsort(merged, axis=1, kind="stable")  # merges two sorted runs: linear
    values = np.take_along_axis(merged, order, axis=1)
    del merged
    count_type = np.int32 if n1 + n2 < 2**31 else np.int64
    ref_count = np.cumsum(order < n1, axis=1, dtype=count_type)  # reference values <= values[:, i]
    del order
    cur_count = np.arange(1, n1 + n2 + 1, dtype=count_type) - ref_count
    gap = ref_count / n1 - cur_count / n2
    del ref_count, cur_count
    # Only the last of a run of equal values has both CDFs complete.
    last = np.ones(values.shape, dtype=bool)
    np.not_equal(values[:, 1:], values[:, :-1], out=last[:, :-1])
    del values
    # The last position of every row has both CDFs at 1 (gap 0), so zeroing the
    # other positions leaves the row's largest and smallest gap unchanged.
    at_ends = np.where(last, gap, 0.0)
    hi = at_ends.max(axis=1)
    lo = np.clip(-at_ends.min(axis=1), 0, 1)
    return np.where(lo > hi, lo, hi)


# --- KS p-value ----------------------------------------------------------------
def _outside_square(n: int, h: int) -> float:
    """P(D >= h/n) for two samples of n: scipy's ``_compute_prob_outside_square``
    with the inner products as one numpy reduction instead of a Python loop."""
    last_k = n // h
    kh = (np.arange(last_k + 1, dtype=np.float64) * h)[:, None]
    j = np.arange(h, dtype=np.float64)[None, :]
    terms = np.prod((n - kh - j) / (n + kh + j + 1), axis=1)
    nonzero = np.flatnonzero(terms)
    if nonzero.size == 0:
        return 0.0
    p = 0.0
    for a in terms[: nonzero[-1] + 1][::-1].tolist():  # Horner, as scipy; one step per k
        p = a * (1.0 - p)
    return 2.0 * p


def _outside_rectangle(n1: int, n2: int, g: int, h: int) -> float | None:
    """scipy's exact p-value for unequal sizes (its compiled lattice-path
    count); None when this scipy does not have it under that name."""
    try:
        from scipy.stats._stats_pythran import _compute_outer_prob_inside_method
    except ImportError:  # pragma: no cover - depends on the scipy release
        return None
    with np.errstate(invalid="raise", over="raise"):
        return float(_compute_outer_prob_inside_method(n1, n2, g, h))


def _asymp(d: np.ndarray | float, n1: int, n2: int) -> np.ndarray:
    from scipy.stats import kstwo

    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return np.clip(kstwo.sf(d, np.round(en)), 0, 1)


def _resolve_method(n1: int, n2: int, method: KSMethod) -> str:
    if method == "auto":
        return "exact" if max(n1, n2) <= _MAX_AUTO_N else "asymp"
    if method == "exact":
        g = math.gcd(n1, n2)
        if n1 // g >= np.iinfo(np.int32).max / (n2 // g):
            return "asymp"
    return method


def ks_pvalue(
    d: float,
    n1: int,
    n2: int,
    method: KSMethod = "auto",
    *,
    fallback: Callable[[], KSResult] | None = None,
) -> KSResult:
    """The statistic and p-value ``scipy.stats.ks_2samp`` reports for a raw
    statistic ``d`` of samples of ``n1`` and ``n2`` values (two-sided).

    Exact mode rounds ``d`` to the lattice (``round(d * lcm) / lcm``) and
    computes the exact tail probability; like scipy, it falls back to the
    asymptotic distribution when the exact computation under- or overflows.
    ``fallback`` computes the result another way when this scipy lacks the
    exact routine for unequal sizes.
    """
    mode = _resolve_method(n1, n2, method)
    if mode == "exact":
        g = math.gcd(n1, n2)
        lcm = (n1 // g) * n2
        h = int(np.round(d * lcm))
        d = h * 1.0 / lcm
        if h == 0:
            return KSResult(float(d), 1.0)
        prob: float | None
        try:
            prob = _outside_square(n1, h) if n1 == n2 else _outside_rectangle(n1, n2, g, h)
        except (FloatingPointError, OverflowError):
            prob = math.nan
        if prob is None:
            if fallback is None:  # pragma: no cover - depends on the scipy release
                raise RuntimeError("this scipy has no exact two-sample KS routine; pass a fallback")
            return fallback()
        if 0 <= prob <= 1:
            return KSResult(float(d), float(np.clip(prob, 0, 1)))
    return KSResult(float(d), float(_asymp(d, n1, n2)))


def ks_pvalues(
    d: np.ndarray,
    n1: int,
    n2: int,
    method: KSMethod = "auto",
    *,
    fallback: Callable[[int], KSResult] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ks_pvalue` for a block of raw statistics with the same sizes
    (one vectorised ``kstwo.sf`` call in asymptotic mode); ``fallback(i)``
    computes row ``i`` another way where this scipy lacks an exact routine."""
    if _resolve_method(n1, n2, method) == "asymp":
        return d.astype(np.float64), np.asarray(_asymp(d, n1, n2), dtype=np.float64).reshape(d.shape)
    pairs = [
        ks_pvalue(v, n1, n2, method, fallback=None if fallback is None else functools.partial(fallback, i))
        for i, v in enumerate(d.tolist())
    ]
    return np.array([p.statistic for p in pairs]), np.array([p.p_value for p in pairs])


def _values(sample: Any, what: str) -> np.ndarray:
    arr = np.asarray(sample)
    if arr.ndim != 1:
        raise InputError(f"{what} must be one-dimensional, not shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{what} must be numeric, not {arr.dtype}")
    if arr.dtype.kind == "f":
        arr = arr[~np.isnan(arr)].astype(np.float64, copy=False)
    elif arr.dtype.kind == "u" and arr.dtype.itemsize == 8:
        arr = arr.astype(np.float64)
    else:
        arr = arr.astype(np.int64, copy=False)
    if arr.size == 0:
        raise InputError(f"{what} has no (non-NaN) values")
    return arr


def ks_test(reference: Any, current: Any, *, method: KSMethod = "auto") -> KSResult:
    """Two-sided two-sample KS test; NaNs are dropped. Statistic and p-value
    equal ``scipy.stats.ks_2samp(reference, current, method=method)``'s."""
    x = np.sort(_values(reference, "reference"))[None, :]
    y = np.sort(_values(current, "current"))[None, :]
    d = float(ks_statistics(x, y)[0])

    def scipy_result() -> KSResult:  # pragma: no cover - only without scipy's exact routine
        from scipy.stats import ks_2samp

        r = ks_2samp(x[0], y[0], method=method)
        return KSResult(float(r.statistic), float(r.pvalue))

    return ks_pvalue(d, x.shape[1], y.shape[1], method, fallback=scipy_result)


# --- PSI -----------------------------------------------------------------------
def psi(reference_counts: Any, current_counts: Any, *, epsilon: float = 1e-4) -> np.ndarray | float:
    """Population stability index of aligned bin counts (last axis = bins):
    ``sum((c - r) * ln(c / r))`` over the bins' shares ``r`` and ``c``, each
    share clipped below at ``epsilon`` so an empty bin costs a finite amount."""
    ref = np.asarray(reference_counts, dtype=np.float64)
    cur = np.asarray(current_counts, dtype=np.float64)
    if ref.shape != cur.shape or ref.shape[-1] == 0:
        raise InputError(f"PSI needs aligned, non-empty bin counts, got shapes {ref.shape} and {cur.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.maximum(ref / ref.sum(axis=-1, keepdims=True), epsilon)
        c = np.maximum(cur / cur.sum(axis=-1, keepdims=True), epsilon)
    out = np.sum((c - r) * np.log(c / r), axis=-1)
    return float(out) if out.ndim == 0 else out


def quantile_edges(xs: np.ndarray, bins: int) -> np.ndarray:
    """The ``bins - 1`` inner edges per row of sorted ``xs`` (C, n): numpy's
    "linear" quantiles at 1/bins, 2/bins, …, read off the sorted rows."""
    n = xs.shape[1]
    q = np.arange(1, bins, dtype=np.float64) / bins
    virtual = n * q + (1 - q) - 1  # numpy's _compute_virtual_index for alpha = beta = 1
    lo = np.clip(np.floor(virtual).astype(np.int64), 0, n - 1)
    hi = np.minimum(lo + 1, n - 1)
    t = virtual - lo
    a, b = xs[:, lo].astype(np.float64), xs[:, hi].astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = b - a
        edges = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
    edges = np.where((a == b) | np.isnan(edges), a, edges)
    return np.maximum.accumulate(edges, axis=1)


def binned_counts(sorted_rows: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin ``(-inf, e1], (e1, e2], …, (e_last, inf)`` of each sorted
    row, by binary search (one call per column, none per value)."""
    c, n = sorted_rows.shape
    cum = np.empty((c, edges.shape[1] + 2), dtype=np.int64)
    cum[:, 0], cum[:, -1] = 0, n
    for i in range(c):
        cum[i, 1:-1] = np.searchsorted(sorted_rows[i], edges[i], side="right")
    return np.diff(cum, axis=1)


def psi_numeric(reference: Any, current: Any, *, bins: int = 10, epsilon: float = 1e-4) -> float:
    """PSI of two numeric samples over ``bins`` reference-quantile bins (NaNs dropped).

    Ties in the reference can make edges repeat; the empty bins between
    repeated edges are empty on both sides and add nothing."""
    x = np.sort(_values(reference, "reference")).astype(np.float64)[None, :]
    y = np.sort(_values(current, "current")).astype(np.float64)[None, :]
    edges = quantile_edges(x, bins)
    return float(psi(binned_counts(x, edges)[0], binned_counts(y, edges)[0], epsilon=epsilon))


def _as_arrow(values: Any) -> pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray):
        out = values
    elif isinstance(values, pa.Array):
        out = pa.chunked_array([values])
    else:
        try:
            out = pa.chunked_array([pa.array(list(values))])
        except (pa.ArrowException, TypeError) as exc:
            raise InputError(f"cannot read categories: {exc}") from None
    if pa.types.is_dictionary(out.type):
        out = out.cast(out.type.value_type)
    return out


def _valid_counts(values: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    counted = pc.value_counts(values)
    cats, counts = counted.field("values"), counted.field("counts")
    keep = pc.is_valid(cats)
    if pa.types.is_floating(cats.type):
        keep = pc.and_(keep, pc.invert(pc.is_nan(cats)))
    return cats.filter(keep), counts.filter(keep).to_numpy(zero_copy_only=False).astype(np.int64)


def category_counts(reference: Any, current: Any) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Categories seen on either side (reference's first) and each side's
    counts of them; nulls (and float NaNs) are not categories. Arrow's
    ``value_counts`` does the counting, ``index_in`` the alignment."""
    ref, cur = _as_arrow(reference), _as_arrow(current)
    if not ref.type.equals(cur.type):
        try:
            cur = cur.cast(ref.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            ref, cur = ref.cast(pa.string()), cur.cast(pa.string())
    ref_cats, ref_n = _valid_counts(ref)
    cur_cats, cur_n = _valid_counts(cur)
    union = pc.unique(pa.concat_arrays([ref_cats, cur_cats]))
    ref_counts = np.zeros(len(union), dtype=np.int64)
    cur_counts = np.zeros(len(union), dtype=np.int64)
    ref_counts[pc.index_in(ref_cats, value_set=union).to_numpy(zero_copy_only=False)] = ref_n
    cur_counts[pc.index_in(cur_cats, value_set=union).to_numpy(zero_copy_only=False)] = cur_n
    return union, ref_counts, cur_counts


def psi_categorical(reference: Any, current: Any, *, epsilon: float = 1e-4) -> float:
    """PSI over the categories of either sample; a category one side never
    shows has share 0 there, clipped to ``epsilon``."""
    _, ref, cur = category_counts(reference, current)
    if ref.sum() == 0 or cur.sum() == 0:
        raise InputError("PSI needs at least one non-null value on each side")
    return float(psi(ref, cur, epsilon=epsilon))


# --- chi-square ----------------------------------------------------------------
def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float, float]:
    """Chi-square test of homogeneity on the 2 x K table: statistic, p-value
    and Cramér's V (``sqrt(chi2 / N)`` for two rows). One category: 0, 1, 0."""
    if reference_counts.size < 2:
        return 0.0, 1.0, 0.0
    from scipy.stats import chi2_contingency

    res = chi2_contingency(np.vstack([reference_counts, current_counts]))
    stat, p = float(res.statistic), float(res.pvalue)
    total = float(reference_counts.sum() + current_counts.sum())
    return stat, p, math.sqrt(stat / total) if total else 0.0
