"""Replies stay within Slack's limits and never let incident text become
markup (a pipeline error cannot ping @channel)."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.chatops._views import show_reply, status_reply

ROOT = Path(__file__).resolve().parents[2]


def _big_incident() -> dict:  # type: ignore[type-arg]
    return {
        "id": "inc-1",
        "pipeline": "ingestion",
        "dataset": "ds",
        "status": "pending_approval",
        "root_cause": "transient_error",
        "confidence": 0.9,
        "summary": "<!channel> boom & " + "x" * 10_000,
        "evidence": [f"<@U0BOSS> line {i}" for i in range(40)],
        "actions": [{"tool": "retry_stage", "status": "ok", "args": {"stage": "fetch"}} for _ in range(80)],
        "notes": ["n"] * 30,
        "audit": [{"seq": i, "ts": "2025-01-01T00:00:00", "actor": "agent", "action": "a", "verdict": "executed",
                   "reason": "r"} for i in range(200)],
    }


def test_a_huge_incident_fits_slacks_limits_and_is_escaped() -> None:
    message = show_reply(_big_incident()).message()
    assert message["text"] and len(message["blocks"]) <= 50
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert all(len(t) <= 3000 for t in sections)
    body = "\n".join(sections)
    assert "<!channel>" not in body and "&lt;!channel&gt; boom &amp;" in body
    assert "<@U0BOSS>" not in body
    assert "…and 70 more" in body
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    assert len(actions) == 1, "a card waiting for approval carries the buttons"


def test_status_with_nothing_configured_still_reads() -> None:
    reply = status_reply({})
    assert "0 pipeline(s)" in reply.text
    assert "_no supervised pipelines_" in str(reply.blocks)


def test_the_app_manifest_points_at_the_daemon_routes() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/dataops" and command["url"].endswith("/slack/commands")
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == ["chat:write", "commands"]
