"""Incident cards in the channel, and the Approve / Reject buttons that
resume a real incident's graph."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from app.chatops import APPROVE_ACTION, REJECT_ACTION, RuntimeOpsBackend, SlackAPIError, build_chatops
from app.errors import ConfigError
from tests.chatops.conftest import OPERATOR, VIEWER, Desk, chat_settings, message_text
from tests.fixtures.slack_api import CHANNEL_ID, FakeSlack


def _buttons(blocks: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [el for b in blocks if b["type"] == "actions" for el in b["elements"]]


def test_an_incident_waiting_for_approval_is_posted_with_buttons(desk: Desk) -> None:
    incident = desk.waiting_incident()
    desk.chat.post_incident(incident)
    [call] = desk.slack.of("chat.postMessage")
    assert call.body["channel"] == CHANNEL_ID
    assert call.headers["authorization"] == "Bearer xoxb-test-token"
    assert incident in call.body["text"]
    buttons = _buttons(call.body["blocks"])
    assert [(b["action_id"], b["value"]) for b in buttons] == [(APPROVE_ACTION, incident), (REJECT_ACTION, incident)]
    assert "needs approval" in message_text(call.body)


def test_an_auto_fix_report_has_no_buttons(desk: Desk) -> None:
    incident = desk.strike("transient_source_errors")
    desk.chat.post_incident(incident)
    body = desk.slack.of("chat.postMessage")[0].body
    assert _buttons(body["blocks"]) == []
    assert "resolved" in message_text(body) and "`retry_stage`" in message_text(body)


def test_approve_click_resumes_the_incident_and_the_fix_runs_once(desk: Desk) -> None:
    incident = desk.waiting_incident()
    desk.chat.post_incident(incident)
    [(_, message_ts)] = list(desk.slack.messages)
    answer = desk.click(APPROVE_ACTION, incident, user=OPERATOR, message_ts=message_ts)
    assert answer.status == 200 and answer.raw == b"", "a click is acknowledged at once, with an empty body"
    [update] = desk.slack.wait_for("chat.update")
    assert update.body["ts"] == message_ts and update.body["channel"] == CHANNEL_ID
    assert "approved by <@U0OPER>" in message_text(update.body)
    assert _buttons(update.body["blocks"]) == [], "the buttons are gone once answered"
    assert desk.world.sup.store.get(incident).status == "resolved"
    trail = desk.audit(incident=incident)
    retries = [e for e in trail if e.action == "retry_stage" and e.verdict == "executed"]
    assert len(retries) == 1
    assert [(e.actor, e.verdict) for e in trail if e.action == "approve"] == [("slack:U0OPER", "executed")]
    assert [e.args["via"] for e in trail if e.action == "chatops.approve"] == ["button"]


def test_a_second_click_does_not_run_the_fix_again(desk: Desk) -> None:
    incident = desk.waiting_incident()
    ts = desk.slack.post_message(f"incident {incident}")
    desk.click(APPROVE_ACTION, incident, user=OPERATOR, message_ts=ts)
    desk.click(APPROVE_ACTION, incident, user=OPERATOR, message_ts=ts)
    assert desk.chat.wait_idle(timeout=30)
    [hook] = desk.slack.wait_for("hook")
    assert "not waiting for a human" in message_text(hook.body)
    assert hook.body.get("replace_original") is False
    retries = [e for e in desk.audit(incident=incident) if e.action == "retry_stage" and e.verdict == "executed"]
    assert len(retries) == 1


def test_a_viewer_cannot_approve(desk: Desk) -> None:
    incident = desk.waiting_incident()
    answer = desk.click(APPROVE_ACTION, incident, user=VIEWER)
    assert answer.status == 200
    [hook] = desk.slack.wait_for("hook")
    text = message_text(hook.body)
    assert "needs the *operator* role; you are a *viewer*" in text
    assert hook.body["response_type"] == "ephemeral"
    assert desk.world.sup.store.get(incident).status == "pending_approval"
    assert desk.slack.of("chat.update") == []
    [entry] = [e for e in desk.audit(actor="slack:U0VIEW")]
    assert (entry.action, entry.verdict, entry.incident_id) == ("chatops.approve", "refused", incident)
    assert entry.reason == "refused (role viewer): button: approve"


def test_reject_click_closes_the_incident_without_acting(desk: Desk) -> None:
    incident = desk.waiting_incident()
    desk.click(REJECT_ACTION, incident, user=OPERATOR)
    [update] = desk.slack.wait_for("chat.update")
    assert "rejected by <@U0OPER>" in message_text(update.body)
    assert desk.world.sup.store.get(incident).status == "rejected"
    acted = [e for e in desk.audit(incident=incident) if e.verdict == "executed" and e.actor == "agent"]
    assert acted == []


def test_posting_needs_a_channel_and_reports_slack_errors(desk: Desk, slack: FakeSlack) -> None:
    incident = desk.strike("stage_exception")
    ops = RuntimeOpsBackend(desk.rt, desk.world.sup, chat=None)
    no_channel = build_chatops(ops, chat_settings(desk.rt.settings, slack, None).model_copy(update={"slack_channel": None}))
    with pytest.raises(ConfigError, match="slack_channel"):
        no_channel.post_incident(incident)
    wrong = build_chatops(ops, chat_settings(desk.rt.settings, slack, None).model_copy(update={"slack_channel": "#nope"}))
    with pytest.raises(SlackAPIError, match="channel_not_found"):
        wrong.post_incident(incident)
    bad_token = chat_settings(desk.rt.settings, slack, None).model_copy(update={"slack_bot_token": SecretStr("xoxb-x")})
    with pytest.raises(SlackAPIError, match="invalid_auth"):
        build_chatops(ops, bad_token).post_incident(incident)
    for chat in (no_channel, wrong):
        chat.close()


def test_chatops_needs_a_signing_secret_and_a_token(desk: Desk, slack: FakeSlack) -> None:
    ops = RuntimeOpsBackend(desk.rt, desk.world.sup, chat=None)
    settings = chat_settings(desk.rt.settings, slack, None)
    with pytest.raises(ConfigError, match="slack_signing_secret"):
        build_chatops(ops, settings.model_copy(update={"slack_signing_secret": None}))
    with pytest.raises(ConfigError, match="slack_bot_token"):
        build_chatops(ops, settings.model_copy(update={"slack_bot_token": None}))
