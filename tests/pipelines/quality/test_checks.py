"""Every check type on passing and failing data, with ``mostly``, examples and errors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.quality import CheckResult, parse_suite, read_parquet, run_suite


def _one(table: pa.Table, check_yaml: str, **kw: object) -> CheckResult:
    suite = parse_suite(f"checks:\n  - {check_yaml}\n")
    result = run_suite(table, suite, **kw)  # type: ignore[arg-type]
    assert len(result.results) == 1
    return result.results[0]


# --- schema ----------------------------------------------------------------------
def test_schema_passes_non_strict_with_extra_columns_and_large_strings() -> None:
    t = pa.table(
        {
            "id": pa.array(["a"], pa.large_string()),
            "n": pa.array([1], pa.int64()),
            "ts": pa.array([datetime(2024, 1, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
            "extra": [1.0],
        }
    )
    r = _one(t, '{type: schema, columns: {id: string, n: int64, ts: "timestamp[us, tz=UTC]"}}')
    assert r.passed and r.observed == {"missing": [], "mismatched": {}, "unexpected": []}
    r = _one(t, "{type: schema, columns: {n: integer, extra: floating, id: any}}")
    assert r.passed


def test_schema_fails_on_missing_mismatched_and_strict_extra() -> None:
    t = pa.table({"id": ["a"], "n": pa.array([1.5], pa.float64()), "extra": [1]})
    r = _one(t, "{type: schema, columns: {id: string, n: int64, gone: string}, strict: true}")
    assert not r.passed
    assert r.observed == {"missing": ["gone"], "mismatched": {"n": "double"}, "unexpected": ["extra"]}
    assert r.unexpected_count == 3
    assert r.expected == {"columns": {"id": "string", "n": "int64", "gone": "string"}, "strict": True}


# --- not_null / null_rate ----------------------------------------------------------
def test_not_null_pass_fail_and_mostly() -> None:
    t = pa.table({"v": [1.0, None, 3.0, float("nan"), 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]})
    r = _one(t, "{type: not_null, column: v}")
    assert not r.passed
    assert (r.unexpected_count, r.element_count) == (2, 10)  # NaN counts as null
    assert r.observed == pytest.approx(0.2)
    assert [e["_row"] for e in r.failing_examples] == [1, 3]
    assert _one(t, "{type: not_null, column: v, mostly: 0.8}").passed
    assert not _one(t, "{type: not_null, column: v, mostly: 0.81}").passed
    assert _one(pa.table({"v": [1, 2, 3]}), "{type: not_null, column: v}").passed


def test_null_rate_bound() -> None:
    t = pa.table({"s": ["a", None, "c", None, "e", "f", "g", "h", "i", "j"]})
    r = _one(t, "{type: null_rate, column: s, max: 0.2}")
    assert r.passed and r.observed == pytest.approx(0.2) and r.unexpected_count == 2
    r = _one(t, "{type: null_rate, column: s, max: 0.1}")
    assert not r.passed
    assert [e["_row"] for e in r.failing_examples] == [1, 3]


# --- unique -------------------------------------------------------------------------------
def test_unique_single_column() -> None:
    assert _one(pa.table({"k": ["a", "b", "c", None, None]}), "{type: unique, column: k}").passed  # nulls not judged
    r = _one(pa.table({"k": ["a", "b", "a", "c", "b", "d"]}), "{type: unique, columns: [k]}")
    assert not r.passed
    assert (r.unexpected_count, r.element_count) == (4, 6)  # every row of a shared key fails
    assert [e["_row"] for e in r.failing_examples] == [0, 1, 2, 4]
    assert r.details == {"distinct": 4, "duplicated_keys": 2}


def test_unique_compound_key_and_mostly() -> None:
    t = pa.table({"a": [1, 1, 2, 2, 3, 3, 4, 5, 6, 7], "b": ["x", "y", "x", "x", "z", "z", None, "q", "q", "q"]})
    r = _one(t, "{type: unique, columns: [a, b]}")
    assert not r.passed
    assert (r.unexpected_count, r.element_count) == (4, 9)  # (2,x) twice, (3,z) twice; the null row not judged
    assert _one(t, "{type: unique, columns: [a, b], mostly: 0.5}").passed
    assert _one(t, "{type: unique, columns: [a]}").unexpected_count == 6


# --- range ----------------------------------------------------------------------------------
def test_range_inclusive_exclusive_nan_and_nulls() -> None:
    t = pa.table({"q": [0.0, 0.5, 1.0, None]})
    r = _one(t, "{type: range, column: q, min: 0, max: 1}")
    assert r.passed and r.element_count == 3 and r.details == {"min": 0.0, "max": 1.0}
    r = _one(t, "{type: range, column: q, min: 0, max: 1, min_inclusive: false, max_inclusive: false}")
    assert not r.passed and r.unexpected_count == 2
    r = _one(pa.table({"q": [0.5, float("nan")]}), "{type: range, column: q, min: 0}")
    assert not r.passed and r.unexpected_count == 1


def test_range_mostly_and_integers() -> None:
    t = pa.table({"n": list(range(100))})
    r = _one(t, "{type: range, column: n, max: 94}")
    assert not r.passed and r.unexpected_count == 5 and r.observed == pytest.approx(0.05)
    assert _one(t, "{type: range, column: n, max: 94, mostly: 0.95}").passed
    assert not _one(t, "{type: range, column: n, max: 94, mostly: 0.96}").passed


def test_range_on_a_string_column_is_an_error_result() -> None:
    r = _one(pa.table({"s": ["a"]}), "{type: range, column: s, min: 0}")
    assert not r.passed and r.error and "numeric" in r.error


# --- in_set -------------------------------------------------------------------------------------
def test_in_set() -> None:
    t = pa.table({"m": ["image", "audio", "text", "video", "video", None]})
    assert _one(t, "{type: in_set, column: m, values: [image, audio, text, video]}").passed
    r = _one(t, "{type: in_set, column: m, values: [image, audio, text]}")
    assert not r.passed and (r.unexpected_count, r.element_count) == (2, 5)
    assert r.details["unexpected_values"] == [{"value": "video", "count": 2}]
    assert _one(t, "{type: in_set, column: m, values: [image, audio, text], mostly: 0.6}").passed
    assert _one(pa.table({"n": [1, 2, 2]}), "{type: in_set, column: n, values: [1, 2]}").passed
    bad = _one(pa.table({"n": [1, 2]}), "{type: in_set, column: n, values: [one]}")
    assert not bad.passed and bad.error


# --- regex / length ------------------------------------------------------------------------------
def test_regex() -> None:
    hexes = ["ab" * 32, "cd" * 32, "XY" * 32, None]
    r = _one(pa.table({"h": hexes}), '{type: regex, column: h, pattern: "^[0-9a-f]{64}$"}')
    assert not r.passed and (r.unexpected_count, r.element_count) == (1, 3)
    assert r.failing_examples[0]["_row"] == 2
    assert _one(pa.table({"h": ["xxabxx"]}), "{type: regex, column: h, pattern: ab}").passed  # searched, not anchored
    assert _one(pa.table({"h": hexes}), '{type: regex, column: h, pattern: "^[0-9a-f]+$", mostly: 0.6}').passed
    err = _one(pa.table({"n": [1]}), "{type: regex, column: n, pattern: x}")
    assert not err.passed and "string" in (err.error or "")


def test_length_counts_characters_and_bytes() -> None:
    t = pa.table({"s": ["é", "ab", "abcd", None], "b": pa.array([b"\x00", b"12", b"1234", None])})
    r = _one(t, "{type: length, column: s, min: 1, max: 2}")
    assert not r.passed and r.unexpected_count == 1 and r.details == {"min_length": 1, "max_length": 4}
    assert _one(t, "{type: length, column: s, max: 2, mostly: 0.6}").passed
    assert _one(t, "{type: length, column: b, min: 1, max: 4}").passed
    assert not _one(t, "{type: length, column: b, min: 2}").passed


# --- row_count -----------------------------------------------------------------------------------
def test_row_count() -> None:
    t = pa.table({"a": list(range(10))})
    assert _one(t, "{type: row_count, min: 1, max: 10}").passed
    r = _one(t, "{type: row_count, min: 11}")
    assert not r.passed and r.observed == 10
    assert not _one(pa.table({"a": pa.array([], pa.int64())}), "{type: row_count, min: 1}").passed


# --- freshness -----------------------------------------------------------------------------------
def test_freshness_with_injected_now() -> None:
    newest = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    t = pa.table({"ts": pa.array([newest - timedelta(days=3), newest], pa.timestamp("us", tz="UTC"))})
    check = "{type: freshness, column: ts, max_age_seconds: 3600}"
    r = _one(t, check, now=newest + timedelta(minutes=30))
    assert r.passed and r.observed == pytest.approx(1800)
    r = _one(t, check, now=newest + timedelta(hours=2))
    assert not r.passed and r.observed == pytest.approx(7200)
    assert r.details["newest"] == newest.isoformat()


def test_freshness_naive_timestamps_dates_and_empty() -> None:
    naive = pa.table({"ts": pa.array([datetime(2024, 5, 1, 12, 0)], pa.timestamp("ns"))})
    now = datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
    assert _one(naive, "{type: freshness, column: ts, max_age_seconds: 601}", now=now).passed
    dates = pa.table({"d": [date(2024, 5, 1)]})
    assert _one(dates, "{type: freshness, column: d, max_age_seconds: 86400}", now=now).passed
    empty = pa.table({"ts": pa.array([None], pa.timestamp("us"))})
    r = _one(empty, "{type: freshness, column: ts, max_age_seconds: 60}", now=now)
    assert not r.passed and r.observed is None


# --- sql -------------------------------------------------------------------------------------
def _scores() -> pa.Table:
    return pa.table({"id": [f"s{i}" for i in range(10)], "q": [0.1, 0.9, 0.8, 0.95, 0.7, 0.2, 0.9, 0.9, 0.6, 0.99]})


def test_sql_rows_mode() -> None:
    t = _scores()
    assert _one(t, '{type: sql, query: "SELECT * FROM snapshot WHERE q > 1"}').passed
    r = _one(t, '{type: sql, query: "SELECT id, q FROM snapshot WHERE q < 0.5 ORDER BY id;"}')
    assert not r.passed
    assert r.observed == 2 and r.unexpected_count == 2
    assert r.failing_examples == [{"id": "s0", "q": 0.1}, {"id": "s5", "q": 0.2}]
    assert _one(t, '{type: sql, query: "SELECT * FROM snapshot WHERE q < 0.5", mostly: 0.8}').passed
    assert not _one(t, '{type: sql, query: "SELECT * FROM snapshot WHERE q < 0.5", mostly: 0.81}').passed


def test_sql_scalar_mode() -> None:
    t = _scores()
    r = _one(t, '{type: sql, query: "SELECT avg(q) FROM snapshot", expect: {op: ">=", value: 0.5}}')
    assert r.passed and r.observed == pytest.approx(0.704)
    r = _one(t, '{type: sql, query: "SELECT count(*) FROM snapshot WHERE q < 0.5", expect: {op: "==", value: 0}}')
    assert not r.passed and r.observed == 2
    assert _one(t, '{type: sql, query: "SELECT max(id) FROM snapshot", expect: {op: eq, value: s9}}').passed


def test_sql_errors_fail_the_check() -> None:
    t = _scores()
    shape = _one(t, '{type: sql, query: "SELECT id, q FROM snapshot", expect: {op: ">", value: 0}}')
    assert not shape.passed and "one value" in (shape.error or "")
    bad = _one(t, '{type: sql, query: "SELECT nope FROM snapshot"}')
    assert not bad.passed and (bad.error or "").startswith("sql error")
    files = _one(t, "{type: sql, query: \"SELECT * FROM read_csv('/etc/hostname')\"}")
    assert not files.passed and files.error  # the query sees the snapshot and nothing else


# --- results as a whole ---------------------------------------------------------------------------
def test_failing_examples_are_capped_and_cut() -> None:
    t = pa.table({"s": ["x" * 1000] * 50})
    r = _one(t, '{type: regex, column: s, pattern: "^y"}')
    assert r.unexpected_count == 50 and len(r.failing_examples) == 5
    assert len(r.failing_examples[0]["s"]) == 257  # 256 characters and an ellipsis
    assert len(_one(t, '{type: regex, column: s, pattern: "^y"}', max_examples=2).failing_examples) == 2
    suite = parse_suite(
        "max_examples: 0\nchecks:\n  - {type: not_null, column: s}\n  - {type: length, column: s, max: 3}\n"
    )
    assert run_suite(t, suite).results[1].failing_examples == []


def test_missing_column_fails_that_check_only() -> None:
    suite = parse_suite("checks:\n  - {type: not_null, column: gone}\n  - {type: row_count, min: 1}\n")
    result = run_suite(pa.table({"a": [1]}), suite)
    gone, rows = result.results
    assert not gone.passed and "gone" in (gone.error or "") and gone.severity == "critical"
    assert rows.passed
    assert result.critical_failed and not result.passed
    assert result.counts() == {
        "total": 2,
        "passed": 1,
        "failed": 1,
        "failed_critical": 1,
        "failed_warning": 0,
        "failed_info": 0,
    }


def test_severity_decides_critical_failed() -> None:
    suite = parse_suite(
        "checks:\n  - {type: row_count, min: 5, severity: warning}\n  - {type: row_count, max: 0, severity: info}\n"
    )
    result = run_suite(pa.table({"a": [1]}), suite)
    assert not result.passed and not result.critical_failed
    assert [r.severity for r in result.failed] == ["warning", "info"]


def test_parquet_file_as_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "snap.parquet"
    pq.write_table(pa.table({"k": ["a", "b", "b"]}), path)
    result = run_suite(read_parquet(path), "checks:\n  - {type: unique, column: k}\n")
    assert result.row_count == 3 and result.results[0].unexpected_count == 2
    payload = result.to_dict()
    assert payload["checks"][0]["name"] == "unique:k" and payload["critical_failed"] is True
