"""How the live world looks to the agents: run events, derived run metrics,
table checks and logs, all turned into signals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from pipelines.runtime import RunEventRow, RunRow, Runtime, SampleRow
from tools._signals import Signal

__all__ = ["event_signals", "events_after", "run_metric_signals", "table_checks", "latest_run", "LATE_COMMIT_S"]

# Runtime chatter that is not an observation of the world.
_QUIET = {"batch_committed"}
# How late an event may commit after it was stamped and given its id. In
# SQLite ids follow commit order, but in Postgres an id is taken at insert, so
# a slow commit can land below an id already read: readers by id look this far
# back for events they have not seen yet.
LATE_COMMIT_S = 30.0
_PAGE = 500


def _t(ts: datetime, start: datetime) -> float:
    if ts.tzinfo is None and start.tzinfo is not None:
        ts = ts.replace(tzinfo=start.tzinfo)
    return round((ts - start).total_seconds(), 3)


def event_signals(rows: list[RunEventRow], start: datetime) -> list[Signal]:
    """Each event becomes an event signal; warnings and errors with a message
    also become log lines (what a person would see in the logs)."""
    out: list[Signal] = []
    for row in rows:
        if row.type in _QUIET:
            continue
        data = dict(row.data or {})
        t = _t(row.ts, start)
        if row.type in ("check_failed", "check_passed"):
            out.append(_check_signal(row, data, t))
            continue
        if row.type == "metrics":
            out.extend(_metric_signals(row, data, t))
            continue
        error = data.pop("error", None)
        # A field an event names like one of the signal's own (a retrain's
        # "labels" count) is kept under another name rather than clash.
        extra = {
            (f"event_{k}" if k in Signal.model_fields else k): v
            for k, v in data.items()
            if isinstance(v, str | int | float | bool)
        }
        out.append(
            Signal(
                kind="event",
                t=t,
                ts=row.ts,
                pipeline=row.pipeline,
                dataset=row.dataset,
                type=row.type,
                stage=row.stage,
                error=error,
                run_id=row.run_id,
                event_id=row.id,
                **extra,
            )
        )
        if row.level in ("warning", "error") and row.message:
            out.append(
                Signal(
                    kind="log", t=t, ts=row.ts, pipeline=row.pipeline, dataset=row.dataset, level=row.level,
                    message=row.message, event_id=row.id,
                )
            )
        if row.type == "run_succeeded":
            out.extend(run_metric_signals(data, row, t))
    return out


def events_after(
    rt: Runtime,
    start: datetime,
    pipeline: str,
    dataset: str | None,
    *,
    after_id: int,
    since_t: float,
    seen: set[int],
    limit: int,
) -> list[Signal]:
    """The signals of every event a reader by id has not seen, oldest id
    first: those above ``after_id``, and those at or below it stamped within
    ``LATE_COMMIT_S`` before ``since_t`` (never before ``start``) whose id is
    not in ``seen``. Whole events only, as many as fit in ``limit`` signals:
    what is left comes on the next read."""
    datasets = [dataset, "*"] if dataset else None
    floor = start + timedelta(seconds=max(0.0, since_t - LATE_COMMIT_S))
    late = _pages(rt, pipeline=pipeline, datasets=datasets, since=floor, until_id=after_id)
    new = _pages(rt, pipeline=pipeline, datasets=datasets, after_id=after_id)
    out: list[Signal] = []
    for rows in (late, new):
        for row in rows:
            if row.id in seen:
                continue
            signals = event_signals([row], start)
            if out and len(out) + len(signals) > limit:
                return out
            out.extend(signals)
    return out


def _pages(rt: Runtime, *, after_id: int | None = None, **where: Any) -> Iterator[RunEventRow]:
    while True:
        page = rt.events.list(after_id=after_id, oldest_first=True, limit=_PAGE, **where)
        yield from page
        if len(page) < _PAGE:
            return
        after_id = page[-1].id


def _metric_signals(row: RunEventRow, data: dict[str, Any], t: float) -> list[Signal]:
    """A pipeline's reported figures (``Runtime.report_metrics``), one metric signal each."""
    return [
        Signal(
            kind="metric", t=t, ts=row.ts, pipeline=row.pipeline, dataset=row.dataset,
            name=v["name"], labels=dict(v.get("labels") or {}), value=v["value"], event_id=row.id,
        )
        for v in data.get("values") or []
        if isinstance(v, dict) and v.get("name")
    ]


def _check_signal(row: RunEventRow, data: dict[str, Any], t: float) -> Signal:
    return Signal(
        kind="check",
        t=t,
        ts=row.ts,
        pipeline=row.pipeline,
        dataset=row.dataset,
        name=data.get("name"),
        status="fail" if row.type == "check_failed" else "pass",
        observed=data.get("observed"),
        expected=data.get("expected"),
        severity=data.get("severity"),
        check_type=data.get("check_type"),
        message=row.message or None,
        event_id=row.id,
    )


def run_metric_signals(data: dict[str, Any], row: RunEventRow, t: float) -> list[Signal]:
    """What one finished run amounted to, as metrics: volumes and the ratios a
    flood shows up in."""
    read = int(data.get("read") or 0)
    if read == 0:
        return []
    common = {"kind": "metric", "t": t, "ts": row.ts, "pipeline": row.pipeline, "dataset": row.dataset, "event_id": row.id}
    out = [
        Signal(name="records_read", value=read, **common),  # type: ignore[arg-type]
        Signal(name="quarantine_ratio", value=round(int(data.get("quarantined") or 0) / read, 4), **common),  # type: ignore[arg-type]
        Signal(name="duplicate_ratio", value=round(int(data.get("duplicates") or 0) / read, 4), **common),  # type: ignore[arg-type]
    ]
    reasons = data.get("quarantine_reasons") or {}
    for reason, n in sorted(reasons.items()):
        out.append(
            Signal(name="records_quarantined_total", labels={"reason": reason}, value=n, **common)  # type: ignore[arg-type]
        )
        # The share of the run's records one reason took: what a flood is made of.
        out.append(
            Signal(name="quarantined_share", labels={"reason": reason}, value=round(n / read, 4), **common)  # type: ignore[arg-type]
        )
    return out


def latest_run(rt: Runtime, pipeline: str, dataset: str | None) -> RunRow | None:
    q = select(RunRow).where(RunRow.pipeline == pipeline)
    if dataset:
        q = q.where(RunRow.dataset == dataset)
    with Session(rt.engine) as s:
        return s.exec(q.order_by(col(RunRow.created_at).desc()).limit(1)).first()


def table_checks(rt: Runtime, dataset: str, cache: dict[Any, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Checks on the dataset's offline table against the ledger: what was
    committed is exactly what the pipeline accepted. Cached per snapshot."""
    if dataset not in rt.offline.tables():
        return []
    current = rt.offline.current_snapshot_id(dataset)
    key = (dataset, current)
    if key in cache:
        return cache[key]
    table = rt.offline.scan(dataset, columns=["sample_id", "uri", "quality_score"])
    ids = table.column("sample_id").to_pylist()
    with Session(rt.engine) as s:
        committed = set(
            s.exec(select(SampleRow.sample_id).where(SampleRow.dataset == dataset, col(SampleRow.committed).is_(True)))
        )
    unknown = [i for i in ids if i not in committed]
    bad_uri = sum(1 for u in table.column("uri").to_pylist() if not u)
    bad_quality = sum(1 for q in table.column("quality_score").to_pylist() if q is None or not 0.0 <= q <= 1.0)
    checks = [
        _check("table_rows_in_ledger", not unknown, len(unknown), 0, dataset, current, examples=unknown[:5]),
        _check("table_row_count_matches_ledger", len(ids) == len(committed), len(ids), len(committed), dataset, current),
        _check("table_uri_not_null", bad_uri == 0, bad_uri, 0, dataset, current),
        _check("table_quality_in_range", bad_quality == 0, bad_quality, 0, dataset, current),
    ]
    cache.clear()
    cache[key] = checks
    return checks


def _check(name: str, ok: bool, observed: Any, expected: Any, dataset: str, snapshot: int | None, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "status": "pass" if ok else "fail",
        "severity": "critical",
        "observed": observed,
        "expected": expected,
        "dataset": dataset,
        "snapshot_id": snapshot,
        **extra,
    }
