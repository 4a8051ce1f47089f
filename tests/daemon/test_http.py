"""The HTTP routes over an in-process daemon (real runtime, supervisor and
stores; no scheduler): tokens, webhooks, the incident API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agents import IncidentRow
from app.daemon import UNROUTED, Daemon
from app.daemon._chat import ChatBridge
from app.daemon._http import build_app
from tests.daemon.conftest import TOKEN, open_daemon

AUTH = {"authorization": f"Bearer {TOKEN}"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"


@pytest.fixture
def client(daemon: Daemon) -> Iterator[TestClient]:
    with TestClient(build_app(daemon, None, ChatBridge(daemon).open())) as c:
        yield c


def _alert(labels: dict[str, str], summary: str, status: str = "firing") -> dict[str, Any]:
    return {
        "status": status, "labels": labels, "annotations": {"summary": summary},
        "startsAt": "2026-01-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": labels["alertname"],
    }


def _payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "dataops", "alerts": list(alerts)}


def test_without_a_configured_token_the_api_refuses_and_says_why(tmp_path: Path, job: dict[str, Any]) -> None:
    d = open_daemon(tmp_path, job)
    try:
        with TestClient(build_app(d, None, ChatBridge(d).open())) as c:
            for method, path in (("GET", "/api/incidents"), ("GET", "/api/runs"), ("POST", "/webhooks/alertmanager")):
                resp = c.request(method, path, headers=AUTH)
                assert resp.status_code == 503, (path, resp.text)
                assert "set DATAOPS_API_TOKEN" in resp.json()["detail"]
            assert c.get("/healthz").status_code == 200
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["scheduler"] == "not running"
    finally:
        d.close()
        d.rt.close()


def test_a_missing_or_wrong_token_is_401(client: TestClient) -> None:
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Basic {TOKEN}"}):
        resp = client.get("/api/incidents", headers=headers)
        assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/incidents", headers=AUTH).json() == []


def test_a_bad_alertmanager_payload_is_one_clear_400(client: TestClient) -> None:
    resp = client.post("/webhooks/alertmanager", headers=AUTH, content=b'{"version": "3"}')
    assert resp.status_code == 400 and resp.json()["error"].startswith("invalid alertmanager payload: version")
    resp = client.post("/webhooks/alertmanager", headers=AUTH, content=b"not json")
    assert resp.status_code == 400 and "not JSON" in resp.json()["error"]


def test_alerts_become_signals_and_the_alerted_job_is_watched(client: TestClient, daemon: Daemon) -> None:
    routed = _alert({"alertname": "IngestionStalled", "pipeline": "ingestion", "dataset": "ds", "severity": "critical"},
                    "no records read for 6 hours")
    stray = _alert({"alertname": "NodeDiskFull", "severity": "warning"}, "disk 95% full on node-3")
    resp = client.post("/webhooks/alertmanager", headers=AUTH, json=_payload(routed, stray))
    assert resp.status_code == 200
    assert resp.json() == {"alerts": 2, "firing": 2, "resolved": 0, "recorded": 2, "unrouted": 1,
                           "monitoring": ["ingestion/ds"]}
    (event,) = daemon.rt.events.list(pipeline="ingestion", types=["alert_firing"])
    assert event.dataset == "ds" and event.level == "error"
    assert event.data["error"] == "IngestionStalled: no records read for 6 hours"
    assert [e.data["alertname"] for e in daemon.rt.events.list(pipeline=UNROUTED)] == ["NodeDiskFull"]
    # Without a scheduler the cycle ran in the request: the alert opened an incident.
    (listed,) = client.get("/api/incidents", headers=AUTH).json()
    assert listed["pipeline"] == "ingestion" and listed["dataset"] == "ds" and "signals" not in listed
    incident = client.get(f"/api/incidents/{listed['id']}", headers=AUTH).json()
    assert {k: incident[k] for k in listed} == listed
    assert any(s.get("alertname") == "IngestionStalled" for s in incident["signals"])
    assert client.get("/api/incidents", headers=AUTH, params={"status": listed["status"]}).json() == [listed]
    assert client.get("/api/incidents", headers=AUTH, params={"status": "rejected"}).json() == []
    metrics = client.get("/metrics").text
    assert 'dataops_daemon_alerts_total{routed="yes",status="firing"} 1.0' in metrics
    assert 'dataops_daemon_alerts_total{routed="no",status="firing"} 1.0' in metrics


def test_the_shipped_alertmanager_fixtures_are_accepted(client: TestClient) -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        resp = client.post("/webhooks/alertmanager", headers=AUTH, content=path.read_bytes())
        assert resp.status_code == 200, (path.name, resp.text)
        assert resp.json()["recorded"] == resp.json()["alerts"] > 0


def test_approving_needs_an_incident_that_waits(client: TestClient, daemon: Daemon) -> None:
    assert client.post("/api/incidents/inc-missing/approve", headers=AUTH).status_code == 404
    daemon.store.create(IncidentRow(id="inc-done", pipeline="ingestion", dataset="ds", status="resolved"))
    resp = client.post("/api/incidents/inc-done/approve", headers=AUTH, json={"by": "alice"})
    assert resp.status_code == 400 and resp.json()["error"] == "incident inc-done is resolved, not waiting for a human"
    shown = client.get("/api/incidents/inc-done", headers=AUTH).json()
    assert shown["status"] == "resolved" and shown["audit"] == []


def test_slack_routes_say_slack_is_not_configured(client: TestClient) -> None:
    for path in ("/slack/events", "/slack/commands"):
        resp = client.post(path, content=b"command=%2Fdataops&text=status")
        assert resp.status_code == 503 and "DATAOPS_SLACK_SIGNING_SECRET" in resp.json()["error"]


def test_an_approval_through_the_api_runs_the_fix_once(tmp_path: Path, job: dict[str, Any]) -> None:
    faulty = {**job, "faults": [{"name": "memory_blowup", "params": {"limit": 16}}]}
    d = open_daemon(tmp_path, faulty, api_token=TOKEN)
    try:
        d.sup.guardrails.pause("*", by="test", reason="freeze")
        assert d.run_job("ingestion/ds")["status"] == "failed"
        (opened,) = d.monitor("ingestion/ds") or []
        assert opened.status == "pending_approval"
        d.sup.guardrails.resume("*", by="test")
        with TestClient(build_app(d, None, ChatBridge(d).open())) as c:
            resp = c.post(f"/api/incidents/{opened.id}/approve", headers=AUTH, json={"by": "alice", "reason": "go"})
            assert resp.status_code == 200 and resp.json() == {"incident": opened.id, "status": "resolved"}
            audit = c.get(f"/api/incidents/{opened.id}", headers=AUTH).json()["audit"]
        assert [(a["actor"], a["reason"]) for a in audit if a["action"] == "approve"] == [("api:alice", "go")]
        assert [a["action"] for a in audit if a["verdict"] == "executed" and a["actor"] == "agent"] == [
            "set_config", "retry_stage",
        ]
    finally:
        d.close()
        d.rt.close()
