"""Suites stored with their dataset; results stored and emitted as run events."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from sqlmodel import Session, select

from app.errors import ConfigError, InputError, NotFoundError
from pipelines.quality import (
    CheckResultRow,
    CheckSuiteRow,
    check_after_write,
    list_results,
    parse_suite,
    record_results,
    register_suite,
    remove_suite,
    run_dataset_checks,
    suite_for,
)
from pipelines.runtime import Runtime

SUITE = """\
checks:
  - {name: ids, type: unique, column: id}
  - {name: enough, type: row_count, min: 3, severity: warning}
  - {name: scores, type: range, column: q, min: 0, max: 1, severity: info}
"""


def _dataset(rt: Runtime, name: str = "tab", pipeline: str = "annotation") -> None:
    rt.ensure_dataset(name, pipeline)
    rt.offline.ensure_table(name, pa.schema([("id", pa.string()), ("q", pa.float64())]))


def _append(rt: Runtime, name: str, ids: list[str], q: list[float], run_id: str) -> int:
    return rt.offline.append(name, pa.table({"id": ids, "q": q}), run_id=run_id)


def test_register_and_read_back_a_suite(runtime: Runtime, tmp_path: Path) -> None:
    _dataset(runtime)
    assert suite_for(runtime, "tab").origin == "default"
    assert [c.type for c in suite_for(runtime, "tab").checks] == ["row_count"]  # not an ingestion dataset
    path = tmp_path / "tab.yaml"
    path.write_text("# kept verbatim\n" + SUITE)
    suite = register_suite(runtime, "tab", path)
    assert suite.origin == "registered" and [c.name for c in suite.checks] == ["ids", "enough", "scores"]
    assert [c.name for c in suite_for(runtime, "tab").checks] == ["ids", "enough", "scores"]
    with Session(runtime.engine) as s:
        assert s.get(CheckSuiteRow, "tab").yaml.startswith("# kept verbatim")  # type: ignore[union-attr]
    register_suite(runtime, "tab", "checks:\n  - {type: row_count, max: 5}\n")  # YAML text replaces it
    assert [c.name for c in suite_for(runtime, "tab").checks] == ["row_count"]
    assert [e.type for e in runtime.events.list(types=["check_suite_registered"])] == ["check_suite_registered"] * 2
    assert remove_suite(runtime, "tab") and not remove_suite(runtime, "tab")
    assert suite_for(runtime, "tab").origin == "default"


def test_bad_or_misplaced_suites_are_refused(runtime: Runtime, tmp_path: Path) -> None:
    _dataset(runtime)
    with pytest.raises(NotFoundError, match="unknown dataset 'nope'"):
        register_suite(runtime, "nope", SUITE)
    with pytest.raises(InputError, match=r"checks\[0\]\.min"):
        register_suite(runtime, "tab", "checks:\n  - {type: row_count, min: -1}\n")
    with pytest.raises(InputError, match="cannot read"):
        register_suite(runtime, "tab", tmp_path / "missing.yaml")
    with Session(runtime.engine) as s:
        assert s.get(CheckSuiteRow, "tab") is None
        s.add(CheckSuiteRow(dataset="tab", yaml="checks: []\n"))  # e.g. written by an older release
        s.commit()
    with pytest.raises(ConfigError, match="registered suite of 'tab'"):
        suite_for(runtime, "tab")
    with pytest.raises(NotFoundError):
        run_dataset_checks(runtime, "nope")


def test_checks_run_on_current_and_older_snapshots(runtime: Runtime) -> None:
    _dataset(runtime)
    register_suite(runtime, "tab", SUITE)
    first = _append(runtime, "tab", ["a", "b"], [0.1, 0.2], "r1")
    second = _append(runtime, "tab", ["b", "c"], [0.3, 1.5], "r2")
    now = run_dataset_checks(runtime, "tab")
    assert now.snapshot_id == second and now.row_count == 4
    by_name = {r.name: r for r in now.results}
    assert not by_name["ids"].passed and by_name["enough"].passed and not by_name["scores"].passed
    old = run_dataset_checks(runtime, "tab", snapshot_id=first)
    assert old.snapshot_id == first and old.row_count == 2
    assert {r.name for r in old.failed} == {"enough"}
    adhoc = run_dataset_checks(runtime, "tab", parse_suite("checks:\n  - {type: row_count, min: 1}\n"))
    assert adhoc.passed
    with pytest.raises(NotFoundError):
        run_dataset_checks(runtime, "tab", snapshot_id=12345)


def test_a_dataset_without_a_table_fails_its_row_count(runtime: Runtime) -> None:
    runtime.ensure_dataset("empty", "ingestion")
    result = run_dataset_checks(runtime, "empty")
    assert result.snapshot_id is None and result.row_count == 0
    assert result.critical_failed
    assert "not empty" in {r.name for r in result.failed}


def test_results_are_stored_and_emitted_as_events(runtime: Runtime) -> None:
    _dataset(runtime)
    register_suite(runtime, "tab", SUITE + "  - {name: has rows, type: row_count, min: 1, severity: critical}\n")
    snap = _append(runtime, "tab", ["a", "a"], [0.5, 2.0], "r1")
    result = run_dataset_checks(runtime, "tab", now=datetime(2024, 1, 1, tzinfo=UTC))
    rows = record_results(runtime, "annotation", "tab", result, run_id="r1")
    assert [r.id for r in rows] and all(r.id for r in rows)

    stored = {r.name: r for r in list_results(runtime, dataset="tab")}
    assert set(stored) == {"ids", "enough", "scores", "has rows"}
    ids = stored["ids"]
    assert (ids.passed, ids.severity, ids.type, ids.snapshot_id, ids.run_id) == (
        False,
        "critical",
        "unique",
        snap,
        "r1",
    )
    assert ids.observed == 1.0 and ids.expected == {"columns": ["id"], "mostly": 1.0}
    assert [e["id"] for e in ids.examples] == ["a", "a"]
    assert (ids.element_count, ids.unexpected_count) == (2, 2)
    assert "ids" in ids.message and "failed" in ids.message
    assert {r.name for r in list_results(runtime, dataset="tab", failed_only=True)} == {"ids", "enough", "scores"}
    assert list_results(runtime, run_id="other") == []

    events = {e.data["name"]: e for e in runtime.events.list(types=["check_failed", "check_passed"])}
    assert {n: (e.type, e.level) for n, e in events.items()} == {
        "ids": ("check_failed", "error"),
        "enough": ("check_failed", "warning"),
        "scores": ("check_failed", "info"),
        "has rows": ("check_passed", "info"),
    }
    e = events["enough"]
    assert (e.pipeline, e.dataset, e.run_id) == ("annotation", "tab", "r1")
    assert e.data["severity"] == "warning" and e.data["observed"] == 2
    assert e.data["expected"] == {"min": 3, "max": None}
    assert e.data["snapshot_id"] == snap and e.message == stored["enough"].message


def test_check_after_write(runtime: Runtime) -> None:
    _dataset(runtime)
    assert check_after_write(runtime, "annotation", "tab", snapshot_id=None, run_id="r0") is None
    snap = _append(runtime, "tab", ["a"], [0.5], "r1")
    result = check_after_write(runtime, "annotation", "tab", snapshot_id=snap, run_id="r1")
    assert result is not None and result.passed and result.snapshot_id == snap
    with Session(runtime.engine) as s:
        rows = list(s.exec(select(CheckResultRow).where(CheckResultRow.run_id == "r1")))
    assert [(r.name, r.passed) for r in rows] == [("not empty", True)]
    assert [e.type for e in runtime.events.list(run_id="r1")] == ["check_passed"]
