"""The SQL check: a DuckDB query over the snapshot, registered as ``snapshot``.

The query runs in a private in-memory DuckDB with file system access turned
off, so a suite can read the snapshot and nothing else.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from pipelines.quality._check_types import SqlCheck
from pipelines.quality._results import CheckResult, jsonable

__all__ = ["run_sql_check"]

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_BATCH = 8192


class _SqlError(Exception):
    pass


def _reader(con: Any, query: str) -> pa.RecordBatchReader:
    rel = con.sql(query)
    if rel is None:
        raise _SqlError("the query returned no result set (a SQL check must SELECT)")
    for method in ("to_arrow_reader", "fetch_arrow_reader", "record_batch"):
        fn = getattr(rel, method, None)
        if fn is not None:
            reader: pa.RecordBatchReader = fn(_BATCH)
            return reader
    raise _SqlError("this duckdb version cannot return Arrow results")  # pragma: no cover


def _fail(check: SqlCheck, message: str, rows: int) -> CheckResult:
    return CheckResult(
        name=check.name,
        type=check.type,
        severity=check.severity,
        passed=False,
        expected=_expected(check),
        element_count=rows,
        error=message,
    )


def _expected(check: SqlCheck) -> dict[str, Any]:
    if check.expect is not None:
        return {"query": check.query, "op": check.expect.op, "value": check.expect.value}
    return {"query": check.query, "rows": 0, "mostly": check.mostly}


def _compare(observed: Any, op: str, value: Any) -> bool:
    if observed is None:
        return False
    if isinstance(value, bool) or isinstance(observed, bool):
        return bool(_COMPARE[op](bool(observed), bool(value)))
    if isinstance(value, int | float):
        try:
            number = float(observed)
        except (TypeError, ValueError):
            return False
        return not math.isnan(number) and bool(_COMPARE[op](number, float(value)))
    return bool(_COMPARE[op](str(observed), str(value)))


def run_sql_check(table: pa.Table, check: SqlCheck, max_examples: int) -> CheckResult:
    import duckdb

    rows = table.num_rows
    query = check.query.strip().rstrip(";").strip()
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.register("snapshot", table)
        try:
            reader = _reader(con, query)
            kept: list[pa.RecordBatch] = []
            returned = 0
            columns = reader.schema.names
            for batch in reader:
                if returned < max(max_examples, 2):
                    kept.append(batch)
                returned += batch.num_rows
        except duckdb.Error as exc:
            return _fail(check, f"sql error: {str(exc).strip().splitlines()[0]}", rows)
        except _SqlError as exc:
            return _fail(check, str(exc), rows)
    finally:
        con.close()
    head = pa.Table.from_batches(kept, schema=reader.schema) if kept else pa.table({c: [] for c in columns})

    if check.expect is not None:
        if returned != 1 or len(columns) != 1:
            return _fail(
                check,
                f"an expect query must return one value; it returned {returned} row(s) × {len(columns)} column(s)",
                rows,
            )
        observed = head.column(0)[0].as_py()
        return CheckResult(
            name=check.name,
            type=check.type,
            severity=check.severity,
            passed=_compare(observed, check.expect.op, check.expect.value),
            observed=jsonable(observed),
            expected=_expected(check),
            element_count=rows,
        )

    allowed = 0 if check.mostly is None else math.floor((1.0 - check.mostly) * rows + 1e-9)
    examples = [jsonable(r, cut=256) for r in head.slice(0, max_examples).to_pylist()] if max_examples > 0 else []
    return CheckResult(
        name=check.name,
        type=check.type,
        severity=check.severity,
        passed=returned <= allowed,
        observed=returned,
        expected=_expected(check),
        element_count=rows,
        unexpected_count=returned,
        failing_examples=examples,
    )
