"""SIGKILL in the middle of a remediation, then a restart: the daemon resumes
the incident from its checkpoint and finishes it, and no action the audit
log shows as done runs again.

The slow point is real: the source folder disappears (an upstream outage),
so the wait_for_upstream playbook pauses the job and probes the source with
a doubling backoff for as long as it stays away. The daemon is killed while
it waits; the folder comes back; the restarted daemon resumes the probes,
resumes the job and re-runs it."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.conftest import DaemonProcess, write_config

pytestmark = pytest.mark.slow


def _audit(home: Path, incident: str) -> list[dict[str, Any]]:
    with sqlite3.connect(home / "metadata.db") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT seq, actor, action, verdict, idempotency_key FROM guardrail_audit WHERE incident_id = ? ORDER BY seq",
            (incident,),
        ).fetchall()
    return [dict(r) for r in rows]


def _acted(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries of actions that touched the world (ran, with either outcome)."""
    return [e for e in entries if e["actor"] == "agent" and e["verdict"] in ("executed", "failed")]


def test_killed_mid_remediation_resumes_and_acts_once(
    daemon_proc: DaemonProcess, job: dict[str, Any], landing: Path
) -> None:
    write_config(daemon_proc.config, [{**job, "schedule": {"interval_s": 4}}])
    daemon_proc.start().wait_ready()
    # Right after a run ends (the next is seconds away), so no run is half-way through the folder.
    daemon_proc.wait_for("two good runs", lambda: [e for e in daemon_proc.logs() if e["event"] == "run_succeeded"][1:],
                         every=0.02)
    away = landing.rename(landing.with_name("landing.away"))  # the upstream goes away

    def probing() -> str | None:
        for inc in daemon_proc.incidents():
            probes = [e for e in _audit(daemon_proc.home, inc["id"]) if e["action"] == "probe_source"]
            if inc["playbook"] == "wait_for_upstream" and len(probes) >= 2:
                return str(inc["id"])
        return None

    incident = daemon_proc.wait_for("the remediation to be probing", probing, timeout=60)
    rc, _ = daemon_proc.stop(signal.SIGKILL)
    assert rc == -signal.SIGKILL
    before = _acted(_audit(daemon_proc.home, incident))
    assert [e["action"] for e in before][:1] == ["pause_pipeline"]
    assert {e["action"] for e in before} == {"pause_pipeline", "probe_source"}, before
    away.rename(landing)  # the upstream is back

    daemon_proc.start()
    assert daemon_proc.wait_log("incident_resumed")["incident"] == incident

    def closed() -> dict[str, Any] | None:
        row = daemon_proc.request("GET", f"/api/incidents/{incident}").json()
        return row if row["status"] not in ("open", "pending_approval") else None

    row = daemon_proc.wait_for("the incident to close", closed, timeout=90)
    assert row["status"] == "resolved", row["notes"]
    after = _acted(_audit(daemon_proc.home, incident))
    actions = [e["action"] for e in after]
    assert actions.count("pause_pipeline") == 1
    assert actions.count("resume_pipeline") == 1
    assert actions.count("retry_stage") == 1
    # Every action ran once per idempotency key: what was done before the kill was not done again.
    keys = [e["idempotency_key"] for e in after]
    assert len(keys) == len(set(keys)), keys
    assert after[: len(before)] == before
    assert after[-1]["action"] == "retry_stage" and after[-1]["verdict"] == "executed"
    runs = daemon_proc.request("GET", "/api/runs", params={"status": "succeeded"}).json()
    assert len(runs) >= 2
    assert daemon_proc.stop()[0] == 0
