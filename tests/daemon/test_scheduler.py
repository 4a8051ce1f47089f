"""Schedules in the metadata DB: stored as references to module functions,
kept across restarts, replaced when the config changes, and actually run."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app.daemon import JOBS_TABLE, Daemon, DaemonScheduler, _tasks
from tests.daemon.conftest import open_daemon


def _stored(daemon: Daemon) -> dict[str, dict[str, Any]]:
    with daemon.rt.engine.connect() as conn:
        rows = conn.execute(text(f"SELECT id, next_run_time, job_state FROM {JOBS_TABLE}")).all()
    return {r.id: {"next": r.next_run_time, **pickle.loads(r.job_state)} for r in rows}


def _scheduled(tmp_path: Path, job: dict[str, Any]) -> tuple[Daemon, DaemonScheduler, dict[str, list[str]]]:
    daemon = open_daemon(tmp_path, job)
    sched = DaemonScheduler(daemon)
    return daemon, sched, sched.start()


def _close(daemon: Daemon, sched: DaemonScheduler) -> None:
    sched.shutdown()
    daemon.close()
    daemon.rt.close()


def test_schedules_are_stored_as_references_and_kept_across_restarts(tmp_path: Path, job: dict[str, Any]) -> None:
    hourly = {**job, "run_at_start": False, "schedule": {"cron": "0 * * * *"}}
    daemon, sched, changes = _scheduled(tmp_path, hourly)
    assert changes["kept"] == [] and set(changes["added"]) == {
        "housekeeping", "monitor:ingestion/ds", "checks:ingestion/ds", "run:ingestion/ds",
    }
    first = _stored(daemon)
    _close(daemon, sched)
    run = first["run:ingestion/ds"]
    assert run["func"] == "app.daemon._tasks:run_pipeline" and run["args"] == ("ingestion/ds",)
    assert first["housekeeping"]["func"] == "app.daemon._tasks:housekeeping"

    daemon, sched, changes = _scheduled(tmp_path, hourly)
    assert changes["added"] == [] and len(changes["kept"]) == 4
    assert {k: v["next"] for k, v in _stored(daemon).items()} == {k: v["next"] for k, v in first.items()}
    _close(daemon, sched)

    # Another schedule replaces the stored one; a job without one loses it.
    daemon, sched, changes = _scheduled(tmp_path, {**hourly, "schedule": {"interval_s": 120}})
    assert changes["added"] == ["run:ingestion/ds"]
    assert str(sched.scheduler.get_job("run:ingestion/ds").trigger) == "interval[0:02:00]"
    _close(daemon, sched)
    daemon, sched, changes = _scheduled(tmp_path, {**hourly, "schedule": None})
    assert changes["removed"] == ["run:ingestion/ds"] and "run:ingestion/ds" not in _stored(daemon)
    _close(daemon, sched)


def test_the_scheduler_runs_the_jobs(tmp_path: Path, job: dict[str, Any]) -> None:
    daemon, sched, _ = _scheduled(tmp_path, {**job, "schedule": {"interval_s": 3600}, "run_at_start": True})
    _tasks.bind(daemon)
    try:
        assert not sched.running
        sched.resume()
        assert sched.running
        _wait_for(daemon, "run")
        (run,) = daemon.rt.events.list(pipeline="ingestion", types=["run_succeeded"])
        assert run.dataset == "ds"
        # An alert's prompt cycle goes through the scheduler (the periodic one is 30 s away).
        assert _count(daemon, "monitor") == 0
        sched.monitor_soon("ingestion/ds")
        _wait_for(daemon, "monitor")
    finally:
        _close(daemon, sched)
        _tasks.bind(None)


def _count(daemon: Daemon, task: str) -> float:
    return sum(
        s.value for m in daemon.metrics.tasks.collect() for s in m.samples
        if s.name.endswith("_total") and s.labels == {"task": task, "outcome": "ok"}
    )


def _wait_for(daemon: Daemon, task: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _count(daemon, task) < 1:
        assert time.monotonic() < deadline, f"no {task} task ran in {timeout}s"
        time.sleep(0.05)
