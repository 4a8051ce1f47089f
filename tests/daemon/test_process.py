"""The daemon as people run it: a subprocess serving HTTP on loopback, with
the scheduler running its jobs, stopped by SIGTERM."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.conftest import REPO, DaemonProcess, land, write_config

pytestmark = pytest.mark.slow

FIRING = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager" / "firing.json"


def _alert(status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="IngestionWorkerCrashLoop"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "dataops",
        "groupLabels": {"alertname": "IngestionWorkerCrashLoop"},
        "commonLabels": {"alertname": "IngestionWorkerCrashLoop", "pipeline": "ingestion", "dataset": "ds"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "IngestionWorkerCrashLoop", "pipeline": "ingestion", "dataset": "ds",
                           "severity": "critical"},
                "annotations": {"summary": "ingestion worker restarted 5 times in 10 minutes"},
                "startsAt": "2026-01-05T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": "4f1e2d3c",
            }
        ],
    }


def test_probes_metrics_and_the_token_guarded_api(daemon_proc: DaemonProcess, job: dict[str, Any]) -> None:
    write_config(daemon_proc.config, [job])
    daemon_proc.start().wait_ready()
    assert daemon_proc.request("GET", "/healthz", token=None).json() == {"status": "ok"}
    ready = daemon_proc.request("GET", "/readyz", token=None).json()
    assert ready["db"] == "ok" and ready["scheduler"] == "running"
    # run_at_start: the job ran once, and the runtime's metrics show it.
    runs = daemon_proc.wait_for("the first run", lambda: [
        r for r in daemon_proc.request("GET", "/api/runs").json() if r["status"] == "succeeded"
    ])
    assert runs[0]["dataset"] == "ds" and runs[0]["read"] == runs[0]["accepted"] + runs[0]["duplicates"] + runs[0]["quarantined"]
    metrics = daemon_proc.request("GET", "/metrics", token=None)
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert f'dataops_records_in_total{{dataset="ds",pipeline="ingestion"}} {float(runs[0]["read"])}' in text
    assert "dataops_daemon_start_time_seconds" in text
    assert 'dataops_daemon_tasks_total{outcome="ok",task="run"} 1.0' in text
    # The API wants the bearer token.
    assert daemon_proc.request("GET", "/api/incidents", token=None).status_code == 401
    assert daemon_proc.request("GET", "/api/incidents", token="wrong").status_code == 401
    assert daemon_proc.request("POST", "/webhooks/alertmanager", token=None, content=FIRING.read_bytes()).status_code == 401
    assert daemon_proc.request("GET", "/api/incidents").json() == []
    jobs = daemon_proc.request("GET", "/api/jobs").json()
    assert {s["id"] for s in jobs["schedules"]} >= {"run:ingestion/ds", "monitor:ingestion/ds", "housekeeping"}
    # Every log line is one JSON object with an event.
    assert all(e["event"] != "<not json>" for e in daemon_proc.logs()), daemon_proc.log_path.read_text()[-2000:]
    rc, seconds = daemon_proc.stop()
    assert rc == 0 and seconds < 15, daemon_proc.log_path.read_text()[-2000:]


def test_an_alert_opens_an_incident(daemon_proc: DaemonProcess, job: dict[str, Any]) -> None:
    write_config(daemon_proc.config, [{**job, "run_at_start": False}], monitor_interval_s=3600)
    daemon_proc.start().wait_ready()
    resp = daemon_proc.request("POST", "/webhooks/alertmanager", json=_alert())
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"alerts": 1, "firing": 1, "resolved": 0, "recorded": 1, "unrouted": 0,
                           "monitoring": ["ingestion/ds"]}
    # The monitor runs hourly here: the alert itself asked for the cycle.
    (incident,) = daemon_proc.wait_for("an incident", daemon_proc.incidents)
    assert incident["pipeline"] == "ingestion" and incident["dataset"] == "ds"
    shown = daemon_proc.request("GET", f"/api/incidents/{incident['id']}").json()
    fired = [s for s in shown["signals"] if s.get("type") == "alert_firing"]
    assert fired and fired[0]["alertname"] == "IngestionWorkerCrashLoop"
    assert fired[0]["error"].startswith("IngestionWorkerCrashLoop: ingestion worker restarted")
    assert daemon_proc.request("GET", "/api/incidents/inc-nope").status_code == 404
    rc, seconds = daemon_proc.stop()
    assert rc == 0 and seconds < 15


def test_sigterm_finishes_the_run_in_flight(daemon_proc: DaemonProcess, job: dict[str, Any], landing: Path) -> None:
    for batch in range(1, 6):
        land(landing, batch, n_images=20)  # a run of a few seconds
    write_config(daemon_proc.config, [job], shutdown_timeout_s=60)
    daemon_proc.start()
    daemon_proc.wait_log("run_started")
    rc, seconds = daemon_proc.stop(signal.SIGTERM)
    assert rc == 0 and seconds < 60, daemon_proc.log_path.read_text()[-2000:]
    events = [e["event"] for e in daemon_proc.logs()]
    # Asked to stop while the run was going, it let the run finish first.
    assert events.index("daemon_stopping") < events.index("run_succeeded") < events.index("daemon_stopped"), events
    with sqlite3.connect(daemon_proc.home / "metadata.db") as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM runs")]
    assert statuses == ["succeeded"]  # not left "running" for the next start to resume


def test_schedules_survive_a_restart(daemon_proc: DaemonProcess, job: dict[str, Any]) -> None:
    write_config(daemon_proc.config, [{**job, "run_at_start": False}])
    daemon_proc.start().wait_ready()
    assert daemon_proc.stop()[0] == 0

    def stored() -> dict[str, float]:
        with sqlite3.connect(daemon_proc.home / "metadata.db") as db:
            return dict(db.execute("SELECT id, next_run_time FROM apscheduler_jobs"))

    before = stored()
    assert set(before) == {"run:ingestion/ds", "monitor:ingestion/ds", "checks:ingestion/ds", "housekeeping"}
    daemon_proc.start().wait_ready()
    synced = daemon_proc.wait_log("schedules_synced")
    assert "run:ingestion/ds" in synced["kept"] and synced["added"] == []
    jobs = {s["id"]: s for s in daemon_proc.request("GET", "/api/jobs").json()["schedules"]}
    # The hourly run keeps the time it was due at, from before the restart.
    assert jobs["run:ingestion/ds"]["next_run_time"] is not None
    assert abs(_ts(jobs["run:ingestion/ds"]["next_run_time"]) - before["run:ingestion/ds"]) < 1e-3
    assert daemon_proc.stop()[0] == 0


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_once_runs_one_pass_and_exits(daemon_proc: DaemonProcess, job: dict[str, Any]) -> None:
    # A real fault: the collate stage runs out of memory above 16 per batch (the default is 64).
    faulty = {**job, "faults": [{"name": "memory_blowup", "params": {"limit": 16}}]}
    write_config(daemon_proc.config, [faulty])
    proc = subprocess.run(
        [sys.executable, "-m", "app", "daemon", "--once", "--json", "--config", str(daemon_proc.config)],
        cwd=REPO, env=daemon_proc.environment(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    (run,) = out["runs"]
    assert run["job"] == "ingestion/ds" and run["status"] == "failed" and "MemoryError" in run["error"]
    (incident,) = out["incidents"]
    assert incident["root_cause"] == "resource_exhaustion" and incident["playbook"] == "reduce_batch_size"
    assert incident["status"] == "resolved"
