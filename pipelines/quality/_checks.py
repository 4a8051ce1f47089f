"""Running checks on an Arrow table, vectorised with pyarrow.compute and numpy.

Each row-level check builds one boolean "unexpected" mask over the table;
counts come from the mask and only the first N failing rows are turned into
Python dicts (the failing examples).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from app.errors import InputError
from pipelines.quality._check_types import (
    CheckSpec,
    FreshnessCheck,
    InSetCheck,
    LengthCheck,
    NotNullCheck,
    NullRateCheck,
    RangeCheck,
    RegexCheck,
    RowCountCheck,
    SchemaCheck,
    UniqueCheck,
    type_matches,
)
from pipelines.quality._results import CheckResult, SuiteResult, jsonable
from pipelines.quality._suite import Suite, coerce_suite

__all__ = ["run_suite", "run_check", "read_parquet", "CheckError"]

_EPS = 1e-12


class CheckError(Exception):
    """A check cannot be evaluated on this table (it then fails with this message)."""


def read_parquet(path: str | Path) -> pa.Table:
    """A Parquet file (or folder of files) as a table to run a suite on."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read Parquet: {exc}") from None


# --- helpers -----------------------------------------------------------------
def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        shown = ", ".join(table.column_names[:12]) + (", …" if table.num_columns > 12 else "")
        raise CheckError(f"column {name!r} is not in the table (columns: {shown or 'none'})")
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col


def _mask(bools: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numpy bool mask from an Arrow boolean array; nulls are False."""
    filled = pc.fill_null(bools, False)
    if isinstance(filled, pa.ChunkedArray):
        if filled.num_chunks == 0:
            return np.zeros(0, dtype=bool)
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def _examples(table: pa.Table, mask: np.ndarray, n: int) -> list[dict[str, Any]]:
    if n <= 0:
        return []
    idx = np.flatnonzero(mask)[:n]
    if idx.size == 0:
        return []
    rows = table.take(pa.array(idx, type=pa.int64())).to_pylist()
    return [{"_row": int(i), **jsonable(r, cut=256)} for i, r in zip(idx, rows, strict=True)]


def _row_result(
    check: Any,
    table: pa.Table,
    unexpected: np.ndarray,
    judged: int,
    max_examples: int,
    *,
    expected: dict[str, Any],
    details: dict[str, Any] | None = None,
) -> CheckResult:
    bad = int(np.count_nonzero(unexpected))
    rate = bad / judged if judged else 0.0
    mostly = float(getattr(check, "mostly", 1.0) or 1.0)
    passed = judged == 0 or (judged - bad) / judged >= mostly - _EPS
    return CheckResult(
        name=check.name,
        type=check.type,
        severity=check.severity,
        passed=passed,
        observed=rate,
        expected={**expected, "mostly": mostly},
        element_count=judged,
        unexpected_count=bad,
        failing_examples=_examples(table, unexpected, max_examples),
        details=details or {},
    )


def _result(check: Any, passed: bool, observed: Any, expected: dict[str, Any], **kw: Any) -> CheckResult:
    return CheckResult(
        name=check.name,
        type=check.type,
        severity=check.severity,
        passed=passed,
        observed=observed,
        expected=expected,
        **kw,
    )


def _is_string(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t)
    )


def _is_binary(t: pa.DataType) -> bool:
    return (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or getattr(pa.types, "is_binary_view", lambda _: False)(t)
    )


def _nulls(col: pa.ChunkedArray) -> pa.ChunkedArray:
    nan_aware = pa.types.is_floating(col.type)
    return pc.is_null(col, nan_is_null=nan_aware)


# --- the check types ---------------------------------------------------------
def _schema(table: pa.Table, check: SchemaCheck, n: int, now: datetime) -> CheckResult:
    actual = {f.name: f.type for f in table.schema}
    missing, mismatched = [], {}
    for column, want in check.expected_types().items():
        if column not in actual:
            missing.append(column)
        elif not type_matches(actual[column], want):
            mismatched[column] = str(actual[column])
    unexpected = [c for c in actual if c not in check.columns] if check.strict else []
    problems = len(missing) + len(mismatched) + len(unexpected)
    return _result(
        check,
        problems == 0,
        {"missing": missing, "mismatched": mismatched, "unexpected": unexpected},
        {"columns": dict(check.columns), "strict": check.strict},
        element_count=table.num_columns,
        unexpected_count=problems,
    )


def _not_null(table: pa.Table, check: NotNullCheck, n: int, now: datetime) -> CheckResult:
    unexpected = _mask(_nulls(_column(table, check.column)))
    return _row_result(check, table, unexpected, table.num_rows, n, expected={"column": check.column})


def _null_rate(table: pa.Table, check: NullRateCheck, n: int, now: datetime) -> CheckResult:
    unexpected = _mask(_nulls(_column(table, check.column)))
    bad = int(np.count_nonzero(unexpected))
    rate = bad / table.num_rows if table.num_rows else 0.0
    return _result(
        check,
        rate <= check.max + _EPS,
        rate,
        {"column": check.column, "max": check.max},
        element_count=table.num_rows,
        unexpected_count=bad,
        failing_examples=_examples(table, unexpected, n),
    )


def _codes(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, int]:
    """Dense integer codes of a column's values, its validity, and the number of codes."""
    arr = col.combine_chunks() if col.num_chunks else pa.array([], type=col.type)
    encoded = pc.dictionary_encode(arr)
    indices = encoded.indices
    valid = np.asarray(pc.is_valid(indices).to_numpy(zero_copy_only=False), dtype=bool)
    codes = np.asarray(pc.fill_null(indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, valid, len(encoded.dictionary)


def _unique(table: pa.Table, check: UniqueCheck, n: int, now: datetime) -> CheckResult:
    columns = [_column(table, c) for c in check.columns]
    codes, valid, k = _codes(columns[0])
    for col in columns[1:]:
        more, ok, k2 = _codes(col)
        valid &= ok
        _, codes = np.unique(codes * max(k2, 1) + more, return_inverse=True)
        codes = codes.astype(np.int64).ravel()
        k = int(codes.max()) + 1 if codes.size else 0
    judged_codes = codes[valid]
    counts = np.bincount(judged_codes, minlength=max(k, 1)) if judged_codes.size else np.zeros(1, np.int64)
    unexpected = np.zeros(table.num_rows, dtype=bool)
    unexpected[valid] = counts[judged_codes] > 1
    details = {"distinct": int(np.count_nonzero(counts)), "duplicated_keys": int(np.count_nonzero(counts > 1))}
    return _row_result(
        check, table, unexpected, int(valid.sum()), n, expected={"columns": list(check.columns)}, details=details
    )


def _values(table: pa.Table, column: str) -> tuple[pa.ChunkedArray, np.ndarray, int]:
    col = _column(table, column)
    valid = _mask(pc.is_valid(col))
    return col, valid, int(valid.sum())


def _range(table: pa.Table, check: RangeCheck, n: int, now: datetime) -> CheckResult:
    col, valid, judged = _values(table, check.column)
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
        raise CheckError(f"range needs a numeric column; {check.column!r} is {t}")
    if pa.types.is_decimal(t):
        col = col.cast(pa.float64())
    ok: Any = None
    if check.min is not None:
        ok = (pc.greater_equal if check.min_inclusive else pc.greater)(col, pa.scalar(float(check.min)))
    if check.max is not None:
        upper = (pc.less_equal if check.max_inclusive else pc.less)(col, pa.scalar(float(check.max)))
        ok = upper if ok is None else pc.and_(ok, upper)
    unexpected = valid & ~_mask(ok)
    lo_hi = pc.min_max(col)
    details = {"min": jsonable(lo_hi["min"].as_py()), "max": jsonable(lo_hi["max"].as_py())}
    expected = {
        "column": check.column,
        "min": check.min,
        "max": check.max,
        "min_inclusive": check.min_inclusive,
        "max_inclusive": check.max_inclusive,
    }
    return _row_result(check, table, unexpected, judged, n, expected=expected, details=details)


def _top_values(col: pa.ChunkedArray, unexpected: np.ndarray, k: int = 10) -> list[dict[str, Any]]:
    if not unexpected.any():
        return []
    counts = pc.value_counts(col.filter(pa.array(unexpected)))
    values, freq = counts.field("values").to_pylist(), counts.field("counts").to_numpy()
    order = np.argsort(-freq, kind="stable")[:k]
    return [{"value": jsonable(values[i], cut=256), "count": int(freq[i])} for i in order]


def _in_set(table: pa.Table, check: InSetCheck, n: int, now: datetime) -> CheckResult:
    col, valid, judged = _values(table, check.column)
    try:
        value_set = pa.array(check.values).cast(col.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise CheckError(f"values do not fit column {check.column!r} of type {col.type}: {exc}") from None
    unexpected = valid & ~_mask(pc.is_in(col, value_set=value_set))
    return _row_result(
        check,
        table,
        unexpected,
        judged,
        n,
        expected={"column": check.column, "values": list(check.values)},
        details={"unexpected_values": _top_values(col, unexpected)},
    )


def _regex(table: pa.Table, check: RegexCheck, n: int, now: datetime) -> CheckResult:
    col, valid, judged = _values(table, check.column)
    if not _is_string(col.type):
        raise CheckError(f"regex needs a string column; {check.column!r} is {col.type}")
    unexpected = valid & ~_mask(pc.match_substring_regex(col, pattern=check.pattern))
    return _row_result(check, table, unexpected, judged, n, expected={"column": check.column, "pattern": check.pattern})


def _length(table: pa.Table, check: LengthCheck, n: int, now: datetime) -> CheckResult:
    col, valid, judged = _values(table, check.column)
    if _is_string(col.type):
        lengths = pc.utf8_length(col)
    elif _is_binary(col.type):
        lengths = pc.binary_length(col)
    else:
        raise CheckError(f"length needs a string or binary column; {check.column!r} is {col.type}")
    ok = pc.is_valid(lengths)
    if check.min is not None:
        ok = pc.and_(ok, pc.greater_equal(lengths, check.min))
    if check.max is not None:
        ok = pc.and_(ok, pc.less_equal(lengths, check.max))
    unexpected = valid & ~_mask(ok)
    lo_hi = pc.min_max(lengths)
    return _row_result(
        check,
        table,
        unexpected,
        judged,
        n,
        expected={"column": check.column, "min": check.min, "max": check.max},
        details={"min_length": lo_hi["min"].as_py(), "max_length": lo_hi["max"].as_py()},
    )


def _row_count(table: pa.Table, check: RowCountCheck, n: int, now: datetime) -> CheckResult:
    rows = table.num_rows
    passed = (check.min is None or rows >= check.min) and (check.max is None or rows <= check.max)
    return _result(check, passed, rows, {"min": check.min, "max": check.max}, element_count=rows)


def _as_utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _freshness(table: pa.Table, check: FreshnessCheck, n: int, now: datetime) -> CheckResult:
    col = _column(table, check.column)
    expected = {"column": check.column, "max_age_seconds": check.max_age_seconds, "now": now.isoformat()}
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("us", tz=col.type.tz), safe=False)
    elif not pa.types.is_date(col.type):
        raise CheckError(f"freshness needs a timestamp or date column; {check.column!r} is {col.type}")
    newest = pc.max(col).as_py()
    if newest is None:
        return _result(check, False, None, expected, element_count=table.num_rows, details={"newest": None})
    age = (now - _as_utc(newest)).total_seconds()
    return _result(
        check,
        age <= check.max_age_seconds,
        age,
        expected,
        element_count=table.num_rows,
        details={"newest": _as_utc(newest).isoformat()},
    )


def _sql(table: pa.Table, check: Any, n: int, now: datetime) -> CheckResult:
    from pipelines.quality._check_sql import run_sql_check

    return run_sql_check(table, check, n)


_RUNNERS: dict[str, Callable[[pa.Table, Any, int, datetime], CheckResult]] = {
    "schema": _schema,
    "not_null": _not_null,
    "null_rate": _null_rate,
    "unique": _unique,
    "range": _range,
    "in_set": _in_set,
    "regex": _regex,
    "length": _length,
    "row_count": _row_count,
    "freshness": _freshness,
    "sql": _sql,
}


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def run_check(table: pa.Table, check: CheckSpec, *, now: datetime | None = None, max_examples: int = 5) -> CheckResult:
    """Run one check on ``table``. A check that cannot be evaluated (missing
    column, wrong column type, bad query) fails with ``error`` set."""
    started = time.perf_counter()
    try:
        result = _RUNNERS[check.type](table, check, max_examples, _now(now))
    except (CheckError, pa.ArrowException) as exc:
        result = _result(check, False, None, {}, element_count=table.num_rows, error=str(exc).strip().splitlines()[0])
    result.seconds = time.perf_counter() - started
    return result


def run_suite(
    table: pa.Table,
    suite: Suite | dict[str, Any] | str | Path,
    *,
    now: datetime | None = None,
    max_examples: int | None = None,
    dataset: str | None = None,
    snapshot_id: int | None = None,
) -> SuiteResult:
    """Run every check of ``suite`` on ``table`` (a snapshot scan or
    ``pq.read_table(path)``). ``now`` anchors freshness checks (default: the
    clock); ``max_examples`` overrides the suite's count of failing example rows."""
    if not isinstance(table, pa.Table):
        raise InputError(f"checks run on a pyarrow.Table, not {type(table).__name__}")
    suite = coerce_suite(suite)
    started = time.perf_counter()
    n = suite.max_examples if max_examples is None else max(0, int(max_examples))
    at = _now(now)
    results = [run_check(table, check, now=at, max_examples=n) for check in suite.checks]
    return SuiteResult(
        dataset=dataset or suite.dataset,
        snapshot_id=snapshot_id,
        suite=suite.origin,
        row_count=table.num_rows,
        results=results,
        seconds=time.perf_counter() - started,
    )
