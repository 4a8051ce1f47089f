"""The daemon on a PostgreSQL metadata DB: its schedules in a PostgreSQL job
store that a restart keeps, and an alert driven through the agents with
LangGraph's PostgreSQL checkpointer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from agents import AgentSettings
from app.daemon import JOBS_TABLE, Daemon, DaemonConfig, DaemonScheduler
from app.settings import load_settings
from pipelines.runtime import Runtime
from tests.conftest import PG_URL, reachable

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_daemon(tmp_path: Path) -> Iterator[Any]:
    if not reachable("127.0.0.1", 5432):
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    dataset = f"d{uuid.uuid4().hex[:10]}"
    spec = {"pipeline": "ingestion", "dataset": dataset, "source": str(tmp_path / "landing"),
            "schedule": {"cron": "30 2 * * *"}}
    opened: list[tuple[Daemon, DaemonScheduler]] = []

    def open_one() -> tuple[Daemon, DaemonScheduler, dict[str, list[str]]]:
        cfg = DaemonConfig.model_validate({"incident_memory": False, "jobs": [spec]})
        rt = Runtime.open(load_settings(home=tmp_path / "ws", database_url=PG_URL))
        daemon = Daemon(rt, cfg, agent_settings=AgentSettings(validate_poll_s=0.05, validate_timeout_s=2)).open()
        sched = DaemonScheduler(daemon)
        changes = sched.start()
        opened.append((daemon, sched))
        return daemon, sched, changes

    yield dataset, open_one
    for daemon, sched in opened:
        if sched.running:
            for job_id in sched.wanted():
                sched.scheduler.remove_job(job_id)
        sched.shutdown()
        daemon.close()
        daemon.rt.close()


def test_schedules_and_incidents_on_postgres(pg_daemon: Any) -> None:
    dataset, open_one = pg_daemon
    key = f"ingestion/{dataset}"
    daemon, sched, changes = open_one()
    assert f"run:{key}" in changes["added"]
    with daemon.rt.engine.connect() as conn:
        stored = dict(conn.execute(text(f"SELECT id, next_run_time FROM {JOBS_TABLE} WHERE id LIKE :k"),
                                   {"k": f"%{dataset}"}).all())
    assert set(stored) == {f"run:{key}", f"monitor:{key}", f"checks:{key}"}
    sched.shutdown()
    again, sched2, changes = open_one()
    assert f"run:{key}" in changes["kept"] and f"run:{key}" not in changes["added"]

    payload = {
        "version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "dataops",
        "alerts": [{
            "status": "firing", "startsAt": "2026-01-05T10:00:00Z",
            "labels": {"alertname": "IngestionWorkerCrashLoop", "pipeline": "ingestion", "dataset": dataset,
                       "severity": "critical"},
            "annotations": {"summary": "worker restarted 5 times in 10 minutes"},
        }],
    }
    asked: list[str] = []
    again.trigger_monitor = asked.append  # the scheduler is paused here: run the cycle in this thread
    assert again.ingest_alerts(json.dumps(payload).encode())["monitoring"] == [key] == asked
    again.monitor(key, wait_s=None)
    (row,) = [r for r in again.store.recent(limit=500) if r.dataset == dataset]
    assert row.status == "escalated"
    assert again.sup.graph.get_state({"configurable": {"thread_id": row.id}}).next == ("escalate",)
