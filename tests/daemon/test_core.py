"""What the daemon does between the scheduler and the agents: runs that
cannot start, job locks, resuming incidents, pruning."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from agents import IncidentRow
from app.daemon import Daemon
from app.errors import NotFoundError
from pipelines.runtime import RunEventRow, utcnow


def test_a_run_whose_source_is_gone_becomes_a_failed_run_event(daemon: Daemon, landing: Path) -> None:
    landing.rename(landing.with_name("elsewhere"))
    out = daemon.run_job("ingestion/ds")
    assert out["status"] == "failed" and out["error"].startswith("source unavailable: source folder not found")
    (event,) = daemon.rt.events.list(pipeline="ingestion", types=["run_failed"])
    assert event.level == "error" and event.stage == "source" and event.data["error"] == out["error"]
    with pytest.raises(NotFoundError, match="no job 'ingestion/nope'"):
        daemon.run_job("ingestion/nope")


def test_work_on_a_busy_job_waits_or_is_skipped(daemon: Daemon) -> None:
    held, release = threading.Event(), threading.Event()

    def remediation() -> None:
        with daemon.holding("ingestion/ds", wait_s=None):
            held.set()
            release.wait(10)

    t = threading.Thread(target=remediation)
    t.start()
    held.wait(10)
    assert daemon.run_job("ingestion/ds") == {"job": "ingestion/ds", "status": "skipped", "reason": "busy"}
    assert daemon.monitor("ingestion/ds") is None
    release.set()
    t.join()
    assert daemon.run_job("ingestion/ds", wait_s=5)["status"] == "succeeded"
    daemon.rt.control.pause("ingestion", "ds", by="test")
    assert daemon.run_job("ingestion/ds")["reason"] == "paused"


def test_an_open_incident_without_a_checkpoint_is_closed_as_failed(daemon: Daemon) -> None:
    daemon.store.create(IncidentRow(id="inc-orphan", pipeline="ingestion", dataset="ds", status="open"))
    daemon.store.create(IncidentRow(id="inc-elsewhere", pipeline="ingestion", dataset="other", status="open"))
    (resumed,) = daemon.resume_in_flight()
    assert resumed.id == "inc-orphan" and resumed.status == "failed"
    assert "before the incident's first checkpoint" in resumed.notes[-1]
    assert daemon.store.get("inc-elsewhere").status == "open"  # not a job of this daemon: left alone


def test_prune_drops_only_what_is_past_retention(daemon: Daemon) -> None:
    old = daemon.rt.events.emit("ingestion", "run_started", dataset="ds")
    new = daemon.rt.events.emit("ingestion", "run_started", dataset="ds")
    with Session(daemon.rt.engine) as s:
        row = s.get(RunEventRow, old.id)
        assert row is not None
        row.ts = utcnow() - timedelta(days=daemon.config.event_retention_days + 1)
        s.add(row)
        s.commit()
    assert daemon.prune() == {"events": 1, "checkpoints": 0}
    assert [e.id for e in daemon.rt.events.list(pipeline="ingestion")] == [new.id]
