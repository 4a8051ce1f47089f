"""Drift detection: reference vs current, per column, the test chosen by type.

* numeric (integers, floats, decimals; timestamps and dates when named in
  ``columns``) → two-sample KS (statistic and p-value equal to
  ``scipy.stats.ks_2samp``), PSI over reference-quantile bins, mean and std
  shift in reference-std units;
* categorical (strings, booleans, dictionaries; the label always) → PSI over
  the categories of either side (a category the reference never had gets the
  epsilon share there) and chi-square;
* every column → missing-rate change (nulls and NaNs), which flags on its own.

Numeric columns with the same value counts are processed together as one
2-D block (see ``_drift_stats``), so 1,000 columns cost a few numpy calls per
block, not a Python loop per value. Thresholds: :class:`DriftConfig`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.errors import InputError
from pipelines.quality._drift_io import as_table
from pipelines.quality._drift_models import SEVERITY_RANK, ColumnDrift, DriftConfig, DriftReport
from pipelines.quality._drift_stats import (
    KSResult,
    binned_counts,
    category_counts,
    chi_square,
    ks_pvalues,
    ks_statistics,
    psi,
    quantile_edges,
)

__all__ = ["detect_drift", "column_kind"]

_BLOCK_VALUES = 2_000_000  # values (both sides) per numeric block: bounds the block's working memory
_ID_MIN_VALUES = 50  # fewer reference values than this never make an identifier
_SHOWN_NEW = 20  # new categories named in a result


def column_kind(type_: pa.DataType, *, explicit: bool = False) -> str:
    """numeric, categorical, temporal (numeric when ``explicit``) or other."""
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if pa.types.is_boolean(type_) or pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "categorical"
    if getattr(pa.types, "is_string_view", lambda _t: False)(type_):
        return "categorical"
    if pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "numeric"
    if pa.types.is_temporal(type_):
        return "numeric" if explicit else "temporal"
    return "other"


@dataclass
class _Numeric:
    index: int
    x: np.ndarray
    y: np.ndarray
    out: dict[str, Any] = field(default_factory=dict)


def _numeric_values(col: pa.ChunkedArray) -> np.ndarray:
    """Non-missing values as int64 or float64 (NaN is missing)."""
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    if pa.types.is_temporal(t):
        col = col.cast(pa.int32() if t.bit_width == 32 else pa.int64())
        t = col.type
    if pa.types.is_decimal(t) or pa.types.is_floating(t) or t == pa.uint64():
        col = col.cast(pa.float64())
    elif pa.types.is_integer(t):
        col = col.cast(pa.int64())
    values = pc.drop_null(col)
    arr = values.to_numpy() if values.num_chunks else np.zeros(0, dtype=np.float64)
    if arr.dtype.kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            arr = arr[~nan]
    return arr


def _missing(col: pa.ChunkedArray, present: int) -> float:
    return (len(col) - present) / len(col) if len(col) else 0.0


def _run_numeric_blocks(items: list[_Numeric], cfg: DriftConfig) -> None:
    groups: dict[tuple[str, int, int], list[_Numeric]] = defaultdict(list)
    for item in items:
        if item.x.size and item.y.size:
            groups[(item.x.dtype.str + item.y.dtype.str, item.x.size, item.y.size)].append(item)
    for (_, n1, n2), members in groups.items():
        per_block = max(1, _BLOCK_VALUES // (n1 + n2))
        for start in range(0, len(members), per_block):
            _numeric_block(members[start : start + per_block], n1, n2, cfg)


def _numeric_block(block: list[_Numeric], n1: int, n2: int, cfg: DriftConfig) -> None:
    xs = np.stack([b.x for b in block])
    xs.sort(axis=1)
    ys = np.stack([b.y for b in block])
    ys.sort(axis=1)

    def scipy_ks(i: int) -> KSResult:  # pragma: no cover - only without scipy's exact routine
        from scipy.stats import ks_2samp

        r = ks_2samp(xs[i], ys[i], method=cfg.ks_method)
        return KSResult(float(r.statistic), float(r.pvalue))

    d, p = ks_pvalues(ks_statistics(xs, ys), n1, n2, cfg.ks_method, fallback=scipy_ks)
    xf, yf = xs.astype(np.float64, copy=False), ys.astype(np.float64, copy=False)
    edges = quantile_edges(xf, cfg.bins)
    psis = np.atleast_1d(psi(binned_counts(xf, edges), binned_counts(yf, edges), epsilon=cfg.psi_epsilon))
    with np.errstate(all="ignore"):
        mean_x, mean_y = xf.mean(axis=1), yf.mean(axis=1)
        std_x, std_y = xf.std(axis=1), yf.std(axis=1)
        safe = np.where(std_x > 0, std_x, np.nan)
        mean_shift = (mean_y - mean_x) / safe
        std_shift = (std_y - std_x) / safe
    for i, b in enumerate(block):
        b.out = {
            "statistic": d[i],
            "p_value": p[i],
            "effect": d[i],
            "psi": psis[i],
            "mean_shift": mean_shift[i],
            "std_shift": std_shift[i],
        }


def _categorical(
    name: str, ref: pa.ChunkedArray, cur: pa.ChunkedArray, cfg: DriftConfig, *, may_be_id: bool
) -> ColumnDrift:
    cats, rc, cc = category_counts(ref, cur)
    n_ref, n_cur = int(rc.sum()), int(cc.sum())
    base = {
        "name": name,
        "missing_ref": _missing(ref, n_ref),
        "missing_cur": _missing(cur, n_cur),
        "reference_count": n_ref,
        "current_count": n_cur,
    }
    distinct_ref = int(np.count_nonzero(rc))
    if may_be_id and n_ref >= _ID_MIN_VALUES and distinct_ref / n_ref >= cfg.id_unique_ratio:
        note = f"identifier-like ({distinct_ref / n_ref:.0%} of reference values distinct): distribution not compared"
        return ColumnDrift(kind="identifier", test="missing", reasons=[note], **base)
    new = np.flatnonzero((rc == 0) & (cc > 0))
    new_names = [str(v) for v in cats.take(pa.array(new[:_SHOWN_NEW])).to_pylist()] if new.size else []
    if rc.size > cfg.max_categories:  # keep the most frequent, pool the rest
        order = np.argsort(-(rc + cc), kind="stable")
        keep, rest = order[: cfg.max_categories - 1], order[cfg.max_categories - 1 :]
        rc = np.append(rc[keep], rc[rest].sum())
        cc = np.append(cc[keep], cc[rest].sum())
    if n_ref == 0 or n_cur == 0:
        return ColumnDrift(kind="categorical", test="chi2", new_categories=new_names, **base)
    stat, p, v = chi_square(rc, cc)
    return ColumnDrift(
        kind="categorical",
        test="chi2",
        statistic=stat,
        p_value=p,
        effect=v,
        psi=float(psi(rc, cc, epsilon=cfg.psi_epsilon)),
        new_categories=new_names,
        **base,
    )


def _judge(c: ColumnDrift, cfg: DriftConfig) -> ColumnDrift:
    """Apply the thresholds: severity, drifted, and a reason per rule that fired."""
    levels: list[str] = []
    reasons = list(c.reasons)
    change = abs(c.missing_cur - c.missing_ref)
    if change >= cfg.missing_warning:
        levels.append("critical" if change >= cfg.missing_critical else "warning")
        reasons.append(f"missing rate {c.missing_ref:.1%} → {c.missing_cur:.1%}")
    enough = min(c.reference_count, c.current_count) >= cfg.psi_min_rows
    if c.psi is not None and c.psi >= cfg.psi_warning:
        if enough:
            levels.append("critical" if c.psi >= cfg.psi_critical else "warning")
            reasons.append(f"PSI {c.psi:.3f} ≥ {cfg.psi_critical if c.psi >= cfg.psi_critical else cfg.psi_warning}")
        else:
            reasons.append(f"PSI {c.psi:.3f} not judged: fewer than {cfg.psi_min_rows} values on a side")
    if c.p_value is not None and c.effect is not None:
        if c.test == "ks":
            alpha, floor, crit, what = cfg.ks_alpha, cfg.ks_min_statistic, cfg.ks_critical_statistic, "KS D"
        else:
            alpha, floor, crit, what = cfg.chi2_alpha, cfg.chi2_min_effect, cfg.chi2_critical_effect, "Cramér's V"
        if c.p_value < alpha and c.effect >= floor:
            levels.append("critical" if c.effect >= crit else "warning")
            reasons.append(f"{what} {c.effect:.3f} (p={c.p_value:.2g})")
    if c.new_categories:
        reasons.append("new categories: " + ", ".join(map(repr, c.new_categories[:5])))
    severity = max(levels, key=SEVERITY_RANK.__getitem__, default="none")
    return c.model_copy(update={"severity": severity, "drifted": severity != "none", "reasons": reasons})


def _absent(name: str, kind: str, side: str, present: pa.ChunkedArray) -> ColumnDrift:
    n = len(present) - present.null_count
    missing = _missing(present, n)
    ref_missing, cur_missing = (1.0, missing) if side == "reference" else (missing, 1.0)
    test = "ks" if kind == "numeric" else "chi2" if kind == "categorical" else "missing"
    return ColumnDrift(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        test=test,  # type: ignore[arg-type]
        missing_ref=ref_missing,
        missing_cur=cur_missing,
        reasons=[f"column absent from the {side}"],
    )


def _select(ref: pa.Table, cur: pa.Table, columns: Sequence[str] | None, label: str | None) -> list[str]:
    if isinstance(columns, str):
        raise InputError("columns must be a list of names, not one string")
    known = list(dict.fromkeys(ref.column_names + cur.column_names))
    if label is not None and label not in known:
        raise InputError(f"label column {label!r} is in neither table")
    if columns is None:
        return [c for c in known if c != label]
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise InputError(
            f"column(s) {', '.join(map(repr, unknown))} in neither table (columns: {', '.join(known[:20])})"
        )
    return [c for c in dict.fromkeys(columns) if c != label]


def _compare(
    names: list[str], ref: pa.Table, cur: pa.Table, cfg: DriftConfig, *, explicit: bool, force_categorical: bool = False
) -> list[ColumnDrift]:
    results: list[ColumnDrift | None] = [None] * len(names)
    numeric: list[_Numeric] = []
    numeric_base: dict[int, dict[str, Any]] = {}
    ref_cols = dict(zip(ref.column_names, ref.columns, strict=True))
    cur_cols = dict(zip(cur.column_names, cur.columns, strict=True))
    for i, name in enumerate(names):
        in_ref, in_cur = name in ref_cols, name in cur_cols
        col = ref_cols[name] if in_ref else cur_cols[name]
        kind = "categorical" if force_categorical else column_kind(col.type, explicit=explicit)
        if not (in_ref and in_cur):
            results[i] = _absent(name, kind, "current" if in_ref else "reference", col)
            continue
        rcol, ccol = ref_cols[name], cur_cols[name]
        if not force_categorical and column_kind(ccol.type, explicit=explicit) != kind:
            results[i] = ColumnDrift(
                name=name,
                kind="other",
                test="missing",
                missing_ref=_missing(rcol, len(rcol) - rcol.null_count),
                missing_cur=_missing(ccol, len(ccol) - ccol.null_count),
                severity="critical",
                drifted=True,
                reasons=[f"type changed from {rcol.type} to {ccol.type}"],
            )
            continue
        if kind == "numeric":
            x, y = _numeric_values(rcol), _numeric_values(ccol)
            if x.dtype != y.dtype:
                x, y = x.astype(np.float64), y.astype(np.float64)
            numeric.append(_Numeric(i, x, y))
            numeric_base[i] = {
                "name": name,
                "missing_ref": _missing(rcol, x.size),
                "missing_cur": _missing(ccol, y.size),
                "reference_count": x.size,
                "current_count": y.size,
            }
        elif kind == "categorical":
            results[i] = _categorical(name, rcol, ccol, cfg, may_be_id=not (explicit or force_categorical))
        else:
            results[i] = ColumnDrift(
                name=name,
                kind=kind,  # type: ignore[arg-type]
                test="missing",
                missing_ref=_missing(rcol, len(rcol) - rcol.null_count),
                missing_cur=_missing(ccol, len(ccol) - ccol.null_count),
                reasons=[f"{rcol.type} column: only its missing rate is compared"],
            )
    _run_numeric_blocks(numeric, cfg)
    for item in numeric:
        results[item.index] = ColumnDrift(kind="numeric", test="ks", **numeric_base[item.index], **item.out)
    return [r if r.drifted else _judge(r, cfg) for r in results if r is not None]


def detect_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    label: str | None = None,
    config: DriftConfig | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` (pyarrow Tables or pandas DataFrames).

    ``columns`` limits the comparison (default: every column of either table
    but the label; naming a temporal or identifier-like column compares it);
    ``label`` names the label column, whose class distribution is compared
    as ``label_drift`` and left out of the dataset share. A column only one
    side has is entirely missing on the other, which the missing-rate rule
    flags. Raises InputError for empty tables or unknown columns.
    """
    started = time.perf_counter()
    cfg = config or DriftConfig()
    ref, cur = as_table(reference, "reference"), as_table(current, "current")
    if ref.num_rows == 0 or cur.num_rows == 0:
        raise InputError(f"drift needs rows on both sides (reference {ref.num_rows}, current {cur.num_rows})")
    names = _select(ref, cur, columns, label)
    results = _compare(names, ref, cur, cfg, explicit=columns is not None)
    label_result = _compare([label], ref, cur, cfg, explicit=True, force_categorical=True)[0] if label else None
    drifted = sum(r.drifted for r in results)
    share = drifted / len(results) if results else 0.0
    return DriftReport(
        columns=results,
        drifted_share=share,
        dataset_drift=bool(results) and share >= cfg.dataset_drift_share,
        label_drift=label_result,
        reference_rows=ref.num_rows,
        current_rows=cur.num_rows,
        config=cfg,
        seconds=time.perf_counter() - started,
    )
