"""Suites stored with their dataset, results stored and emitted as run events.

The monitor agent reads check outcomes two ways: the ``check_results`` table
(history, failing examples) and ``check_failed`` / ``check_passed`` run
events (signals), both written by :func:`record_results`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import JSON, BigInteger, Column, Index, Text
from sqlmodel import Field, Session, SQLModel, col, select

from app.errors import ConfigError, InputError
from pipelines.quality._checks import run_suite
from pipelines.quality._results import SuiteResult, jsonable
from pipelines.quality._suite import Suite, default_suite, load_suite, parse_suite
from pipelines.runtime import utcnow

if TYPE_CHECKING:
    from pipelines.runtime import Runtime

__all__ = [
    "CheckSuiteRow",
    "CheckResultRow",
    "register_suite",
    "remove_suite",
    "suite_for",
    "run_dataset_checks",
    "record_results",
    "check_after_write",
    "list_results",
    "LEVEL_BY_SEVERITY",
]

# The run-event level of a failed check; a passed check is always "info".
LEVEL_BY_SEVERITY = {"critical": "error", "warning": "warning", "info": "info"}


class CheckSuiteRow(SQLModel, table=True):
    """The check suite registered for a dataset, as the YAML it was given."""

    __tablename__ = "check_suites"

    dataset: str = Field(primary_key=True)
    yaml: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class CheckResultRow(SQLModel, table=True):
    """One check's outcome on one snapshot."""

    __tablename__ = "check_results"
    __table_args__ = (Index("ix_check_results_dataset_at", "dataset", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset: str
    snapshot_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    run_id: str | None = Field(default=None, index=True)
    name: str
    type: str
    severity: str
    passed: bool
    observed: Any = Field(default=None, sa_column=Column(JSON))
    expected: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    examples: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    element_count: int = 0
    unexpected_count: int = 0
    message: str = Field(default="", sa_column=Column(Text))
    error: str | None = Field(default=None, sa_column=Column(Text))
    at: datetime = Field(default_factory=utcnow)


# --- suites --------------------------------------------------------------------
def _read_suite_source(path_or_yaml: str | Path) -> tuple[str, Suite]:
    if isinstance(path_or_yaml, Path) or (
        isinstance(path_or_yaml, str)
        and "\n" not in path_or_yaml
        and path_or_yaml.strip().lower().endswith((".yaml", ".yml"))
    ):
        path = Path(path_or_yaml)
        suite = load_suite(path)
        return path.read_text(encoding="utf-8"), suite
    if not isinstance(path_or_yaml, str):
        raise InputError(f"a suite is a path or YAML text, not {type(path_or_yaml).__name__}")
    return path_or_yaml, parse_suite(path_or_yaml)


def register_suite(rt: Runtime, dataset: str, path_or_yaml: str | Path) -> Suite:
    """Validate a suite (a ``.yaml`` path or YAML text) and store it as
    ``dataset``'s suite, replacing any earlier one. The dataset must exist."""
    row = rt.dataset(dataset)
    text, suite = _read_suite_source(path_or_yaml)
    with Session(rt.engine) as s:
        stored = s.get(CheckSuiteRow, dataset)
        if stored is None:
            stored = CheckSuiteRow(dataset=dataset, yaml=text)
        stored.yaml, stored.updated_at = text, utcnow()
        s.add(stored)
        s.commit()
    rt.events.emit(
        row.pipeline,
        "check_suite_registered",
        dataset=dataset,
        message=f"check suite for {dataset!r} set ({len(suite.checks)} checks)",
        checks=[c.name for c in suite.checks],
    )
    return suite.with_origin("registered")


def remove_suite(rt: Runtime, dataset: str) -> bool:
    """Forget ``dataset``'s registered suite (it falls back to the default); True if there was one."""
    with Session(rt.engine) as s:
        stored = s.get(CheckSuiteRow, dataset)
        if stored is None:
            return False
        s.delete(stored)
        s.commit()
    return True


def suite_for(rt: Runtime, dataset: str) -> Suite:
    """The dataset's registered suite, else the default for its pipeline
    (the ingestion default for ingestion datasets, a row count for others)."""
    row = rt.dataset(dataset)
    with Session(rt.engine) as s:
        stored = s.get(CheckSuiteRow, dataset)
    if stored is None:
        return default_suite(row.pipeline)
    try:
        return parse_suite(stored.yaml, origin=f"registered suite of {dataset!r}").with_origin("registered")
    except InputError as exc:
        raise ConfigError(f"{exc} (register a valid one with `dataops check {dataset} --suite FILE --save`)") from None


# --- running ---------------------------------------------------------------------
def run_dataset_checks(
    rt: Runtime,
    dataset: str,
    suite: Suite | None = None,
    snapshot_id: int | None = None,
    *,
    now: datetime | None = None,
    max_examples: int | None = None,
) -> SuiteResult:
    """Run ``suite`` (default: :func:`suite_for`) on a snapshot of the dataset's
    offline table (default: the current one). A dataset with no table yet is
    checked as an empty table, so its row-count check fails."""
    rt.dataset(dataset)
    suite = suite if suite is not None else suite_for(rt, dataset)
    table_name = suite.table or dataset
    if table_name in rt.offline.tables():
        if snapshot_id is None:
            snapshot_id = rt.offline.current_snapshot_id(table_name)
        table = rt.offline.scan(table_name, snapshot_id) if snapshot_id is not None else pa.table({})
    elif snapshot_id is not None:
        from app.errors import NotFoundError

        raise NotFoundError(f"dataset {dataset!r} has no offline table {table_name!r}, so no snapshot {snapshot_id}")
    else:
        table = pa.table({})
    return run_suite(table, suite, now=now, max_examples=max_examples, dataset=dataset, snapshot_id=snapshot_id)


def record_results(
    rt: Runtime, pipeline: str, dataset: str, result: SuiteResult, run_id: str | None = None
) -> list[CheckResultRow]:
    """Store every check's outcome and emit it as a ``check_failed`` (level by
    severity: critical→error, warning→warning, info→info) or ``check_passed``
    (info) run event of ``pipeline``."""
    rows = [
        CheckResultRow(
            dataset=dataset,
            snapshot_id=result.snapshot_id,
            run_id=run_id,
            name=r.name,
            type=r.type,
            severity=r.severity,
            passed=r.passed,
            observed=jsonable(r.observed),
            expected=jsonable(r.expected),
            examples=jsonable(r.failing_examples),
            element_count=r.element_count,
            unexpected_count=r.unexpected_count,
            message=r.message,
            error=r.error,
            at=result.at,
        )
        for r in result.results
    ]
    with Session(rt.engine, expire_on_commit=False) as s:
        s.add_all(rows)
        s.commit()
    for r in result.results:
        rt.events.emit(
            pipeline,
            "check_passed" if r.passed else "check_failed",
            run_id=run_id,
            dataset=dataset,
            level="info" if r.passed else LEVEL_BY_SEVERITY.get(r.severity, "warning"),
            stage="checks",
            message=r.message,
            name=r.name,
            check_type=r.type,
            severity=r.severity,
            observed=jsonable(r.observed),
            expected=jsonable(r.expected),
            element_count=r.element_count,
            unexpected_count=r.unexpected_count,
            snapshot_id=result.snapshot_id,
            error=r.error,
        )
    return rows


def check_after_write(
    rt: Runtime,
    pipeline: str,
    dataset: str,
    *,
    snapshot_id: int | None,
    run_id: str | None = None,
    now: datetime | None = None,
) -> SuiteResult | None:
    """What a pipeline calls after it commits a snapshot: run the dataset's
    suite on it, store and emit the results. None when the run wrote no snapshot."""
    if snapshot_id is None:
        return None
    result = run_dataset_checks(rt, dataset, snapshot_id=snapshot_id, now=now)
    record_results(rt, pipeline, dataset, result, run_id=run_id)
    return result


def list_results(
    rt: Runtime,
    *,
    dataset: str | None = None,
    run_id: str | None = None,
    failed_only: bool = False,
    since: datetime | None = None,
    limit: int = 200,
) -> list[CheckResultRow]:
    """Stored check results, newest first."""
    q = select(CheckResultRow)
    if dataset:
        q = q.where(CheckResultRow.dataset == dataset)
    if run_id:
        q = q.where(CheckResultRow.run_id == run_id)
    if failed_only:
        q = q.where(col(CheckResultRow.passed).is_(False))
    if since:
        q = q.where(CheckResultRow.at >= since)
    q = q.order_by(col(CheckResultRow.id).desc()).limit(limit)
    with Session(rt.engine) as s:
        return list(s.exec(q))
