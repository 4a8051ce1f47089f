"""Slack through the running daemon: an escalated incident is posted once
with its buttons, an operator's signed Approve click resumes it, and an
unsigned request changes nothing. Slack's Web API is a local fake server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.chatops import APPROVE_ACTION
from tests.daemon.conftest import DaemonProcess, write_config
from tests.daemon.test_process import _alert
from tests.fixtures.slack_api import BOT_TOKEN, CHANNEL_ID, FakeSlack
from tests.fixtures.slack_requests import SIGNING_SECRET, button_click, signed_headers, slash_command

pytestmark = pytest.mark.slow

OPERATOR = "U0OPER"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def test_an_escalation_is_posted_and_approved_from_slack(
    daemon_proc: DaemonProcess, job: dict[str, Any], slack: FakeSlack, tmp_path: Path
) -> None:
    roles = tmp_path / "roles.yaml"
    roles.write_text(f"users:\n  {OPERATOR}: operator\n")
    daemon_proc.env.update(
        DATAOPS_SLACK_SIGNING_SECRET=SIGNING_SECRET, DATAOPS_SLACK_BOT_TOKEN=BOT_TOKEN,
        DATAOPS_SLACK_API_URL=slack.api_url, DATAOPS_SLACK_CHANNEL=CHANNEL_ID, DATAOPS_SLACK_ROLES=str(roles),
    )
    write_config(daemon_proc.config, [{**job, "run_at_start": False}], monitor_interval_s=3600)
    daemon_proc.start().wait_ready()
    assert daemon_proc.request("GET", "/readyz", token=None).json()["slack"] == {"enabled": True, "reason": None}

    # Nobody knows this alert's cause: the agents escalate, and the card goes to the channel.
    assert daemon_proc.request("POST", "/webhooks/alertmanager", json=_alert()).status_code == 200
    (incident,) = daemon_proc.wait_for("an escalation", lambda: [
        i for i in daemon_proc.incidents() if i["status"] == "escalated"
    ])
    (post,) = slack.wait_for("chat.postMessage")
    assert post.body["channel"] == CHANNEL_ID and incident["id"] in json.dumps(post.body)

    unsigned = slash_command("status", user=OPERATOR, response_url=slack.hook_url())
    resp = daemon_proc.request("POST", "/slack/commands", token=None, content=unsigned,
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 401
    status = daemon_proc.request("POST", "/slack/commands", token=None, content=unsigned,
                                 headers=signed_headers(unsigned))
    assert status.status_code == 200 and "ingestion" in status.text

    (card_ts,) = [ts for (_, ts), m in slack.messages.items() if incident["id"] in json.dumps(m)]
    click = button_click(APPROVE_ACTION, incident["id"], user=OPERATOR, response_url=slack.hook_url("btn"),
                         message_ts=card_ts)
    resp = daemon_proc.request("POST", "/slack/events", token=None, content=click, headers=signed_headers(click))
    assert resp.status_code == 200, resp.text
    row = daemon_proc.wait_for("the answer", lambda: (
        r if (r := daemon_proc.request("GET", f"/api/incidents/{incident['id']}").json())["status"] != "escalated"
        else None
    ))
    assert row["status"] == "resolved"
    assert [a["actor"] for a in row["audit"] if a["action"] == "approve"] == [f"slack:{OPERATOR}"]
    assert len(slack.of("chat.postMessage")) == 1  # posted once, not again when it closed
    assert daemon_proc.stop()[0] == 0


VIEWER = "U0VIEW"
ADMIN = "U0ADMIN"


def test_every_subcommand_through_the_running_daemon(
    daemon_proc: DaemonProcess, job: dict[str, Any], slack: FakeSlack, tmp_path: Path
) -> None:
    roles = tmp_path / "roles.yaml"
    roles.write_text(f"users:\n  {OPERATOR}: operator\n  {ADMIN}: admin\n  {VIEWER}: viewer\n")
    daemon_proc.env.update(
        DATAOPS_SLACK_SIGNING_SECRET=SIGNING_SECRET, DATAOPS_SLACK_BOT_TOKEN=BOT_TOKEN,
        DATAOPS_SLACK_API_URL=slack.api_url, DATAOPS_SLACK_CHANNEL=CHANNEL_ID, DATAOPS_SLACK_ROLES=str(roles),
    )
    write_config(daemon_proc.config, [{**job, "run_at_start": False}], monitor_interval_s=3600, incident_memory=False)
    daemon_proc.start().wait_ready()
    assert daemon_proc.request("POST", "/webhooks/alertmanager", json=_alert()).status_code == 200
    (incident,) = daemon_proc.wait_for("an escalation", lambda: [
        i["id"] for i in daemon_proc.incidents() if i["status"] == "escalated"
    ])

    def send(text: str, user: str = OPERATOR, **sign: Any) -> Any:
        body = slash_command(text, user=user, response_url=slack.hook_url(text.split()[0]))
        return daemon_proc.request("POST", "/slack/commands", token=None, content=body,
                                   headers=signed_headers(body, **sign))

    # A forged signature and a stale timestamp are refused and change nothing.
    assert send("pause", secret="not-the-secret").status_code == 401
    assert send("pause", timestamp=int(time.time()) - 600).status_code == 401
    assert "paused" not in send("status").text.lower()

    # A viewer may look but not approve; the refusal names both roles.
    refused = send(f"approve {incident}", user=VIEWER)
    assert refused.status_code == 200 and "operator" in refused.text and "viewer" in refused.text
    assert daemon_proc.request("GET", f"/api/incidents/{incident}").json()["status"] == "escalated"

    answers = {
        "help": "approve", "status": "ingestion", "incidents open": incident, "incidents all": incident,
        f"show {incident}": incident,
    }
    for text, expected in answers.items():
        resp = send(text, user=VIEWER)
        assert resp.status_code == 200 and expected in resp.text, (text, resp.text)

    assert send("pause ingestion").status_code == 200
    assert "paused" in send("status").text.lower()
    assert send("resume ingestion").status_code == 200
    for text in ("run ingestion", "ask what is open?", f"reject {incident} the owner is on it"):
        assert send(text).status_code == 200
    slack.wait_for("hook", count=3, timeout=60)
    hooks = {c.path.rsplit("/", 1)[-1] for c in slack.of("hook")}
    assert {"run", "ask", "reject"} <= hooks
    row = daemon_proc.wait_for("the rejection", lambda: (
        r if (r := daemon_proc.request("GET", f"/api/incidents/{incident}").json())["status"] == "rejected" else None
    ), timeout=60)
    actors = {(a["actor"], a["action"]) for a in row["audit"]}
    assert (f"slack:{OPERATOR}", "reject") in actors
    assert daemon_proc.stop()[0] == 0
