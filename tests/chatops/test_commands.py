"""Every /dataops subcommand through handle_request, signed as Slack signs
it, against the real runtime, supervisor and guardrails."""

from __future__ import annotations

from sqlmodel import Session, select

from pipelines.runtime import RunRow
from tests.chatops.conftest import ADMIN, OPERATOR, STRANGER, VIEWER, Desk, message_text

COMMANDS = ("status", "incidents", "show", "approve", "reject", "pause", "resume", "run", "ask", "help")


def test_help_lists_every_command_and_the_roles(desk: Desk) -> None:
    for text in ("", "help"):
        answer = desk.command(text, user=VIEWER)
        assert answer.status == 200
        body = answer.json
        assert body["response_type"] == "ephemeral"
        assert body["text"], "a plain-text fallback"
        assert all(b["type"] in ("section", "context") for b in body["blocks"])
        for name in COMMANDS:
            assert f"/dataops {name}" in answer.text
        assert "admin" in answer.text and "operator" in answer.text


def test_status_shows_pipelines_incidents_and_the_switch(desk: Desk) -> None:
    answer = desk.command("status", user=VIEWER)
    text = answer.text
    assert "ingestion/ds" in text and "succeeded" in text
    assert "Auto-fix is *on*" in text
    assert "Open incidents* (0)" in text
    incident = desk.strike("stage_exception")  # escalates: stays open
    desk.command("pause", user=OPERATOR)
    text = desk.command("status", user=VIEWER).text
    assert incident in text
    assert "Open incidents* (1)" in text
    assert "paused for every pipeline" in text and "slack:U0OPER" in text


def test_incidents_lists_open_ones_or_all(desk: Desk) -> None:
    resolved = desk.strike("transient_source_errors")  # auto-fixed
    escalated = desk.strike("stage_exception")
    open_text = desk.command("incidents", user=VIEWER).text
    assert escalated in open_text and resolved not in open_text
    all_text = desk.command("incidents all", user=VIEWER).text
    assert escalated in all_text and resolved in all_text
    assert "resolved" in all_text and "escalated" in all_text


def test_show_gives_diagnosis_evidence_actions_and_audit_trail(desk: Desk) -> None:
    incident = desk.strike("transient_source_errors")
    row = desk.world.sup.store.get(incident)
    answer = desk.command(f"show {incident}", user=VIEWER)
    text = answer.text
    assert incident in text
    assert f"*Root cause* {row.root_cause}" in text
    assert "*Evidence*" in text and row.diagnosis["evidence"][0][:40] in text.replace("&gt;", ">").replace("&lt;", "<")
    assert "*Actions*" in text and "`retry_stage`" in text
    assert "*Audit trail*" in text and "agent `retry_stage` executed" in text
    missing = desk.command("show inc-nope", user=VIEWER)
    assert missing.status == 200 and "no incident 'inc-nope'" in missing.text


def test_approve_from_the_command_resumes_the_incident(desk: Desk) -> None:
    incident = desk.waiting_incident()
    ack = desk.command(f"approve {incident}", user=OPERATOR)
    assert ack.status == 200 and "Approving" in ack.text
    later = desk.later()
    assert later["response_type"] == "in_channel"
    assert "resolved" in message_text(later) and "approved by <@U0OPER>" in message_text(later)
    assert desk.world.sup.store.get(incident).status == "resolved"
    approvals = [e for e in desk.audit(incident=incident) if e.action == "approve"]
    assert [(e.actor, e.verdict) for e in approvals] == [("slack:U0OPER", "executed")]


def test_reject_with_a_reason_closes_the_incident(desk: Desk) -> None:
    incident = desk.waiting_incident()
    desk.command(f"reject {incident} source owner is on it", user=OPERATOR)
    assert "rejected" in message_text(desk.later())
    assert desk.world.sup.store.get(incident).status == "rejected"
    rejects = [e for e in desk.audit(incident=incident) if e.action == "reject"]
    assert [(e.actor, e.reason) for e in rejects] == [("slack:U0OPER", "source owner is on it")]
    again = desk.command(f"approve {incident}", user=OPERATOR)
    assert again.status == 200
    assert "not waiting for a human" in message_text(desk.later(2))


def test_pause_and_resume_everywhere(desk: Desk) -> None:
    guards = desk.world.sup.guardrails
    answer = desk.command("pause", user=OPERATOR)
    assert answer.json["response_type"] == "in_channel"
    assert "paused auto-fix for every pipeline" in answer.text
    assert guards.is_paused("ingestion") and guards.is_paused("enrichment")
    refused = desk.command("resume", user=OPERATOR)
    assert "needs the *admin* role; you are a *operator*" in refused.text
    assert guards.is_paused("ingestion"), "an operator cannot lift the global switch"
    desk.command("resume", user=ADMIN)
    assert not guards.is_paused("ingestion")
    switch = [(e.actor, e.action) for e in desk.audit() if e.action.startswith("guardrails.")]
    assert switch == [("slack:U0OPER", "guardrails.pause"), ("slack:U0ADMIN", "guardrails.resume")]


def test_pausing_one_pipeline_stops_its_runs_and_its_fixes(desk: Desk) -> None:
    rt, guards = desk.rt, desk.world.sup.guardrails
    desk.command("pause ingestion", user=OPERATOR)
    assert guards.is_paused("ingestion") and not guards.is_paused("enrichment")
    assert rt.control.is_paused("ingestion", "ds")
    desk.world.land()
    desk.command("run ingestion", user=OPERATOR)
    assert "*paused*" in message_text(desk.later())
    answer = desk.command("resume ingestion", user=OPERATOR)
    assert "resumed `ingestion`" in answer.text
    assert not guards.is_paused("ingestion") and not rt.control.is_paused("ingestion", "ds")
    desk.command("run ingestion/ds", user=OPERATOR)
    assert "*succeeded*" in message_text(desk.later(2))
    unknown = desk.command("pause ingestoin", user=OPERATOR)
    assert "unknown pipeline 'ingestoin'" in unknown.text


def test_resuming_a_pipeline_under_the_global_switch_says_fixes_stay_off(desk: Desk) -> None:
    desk.command("pause", user=OPERATOR)
    answer = desk.command("resume ingestion", user=OPERATOR)
    assert "global kill switch is still on" in answer.text
    assert desk.world.sup.guardrails.is_paused("ingestion")


def test_run_starts_a_real_run(desk: Desk) -> None:
    with Session(desk.rt.engine) as s:
        before = len(list(s.exec(select(RunRow))))
    desk.world.land()
    ack = desk.command("run ingestion", user=OPERATOR)
    assert "Running ingestion" in ack.text
    text = message_text(desk.later())
    with Session(desk.rt.engine) as s:
        runs = list(s.exec(select(RunRow).order_by(RunRow.created_at)))  # type: ignore[arg-type]
    assert len(runs) == before + 1
    assert runs[-1].id in text and "*succeeded*" in text and f"accepted {runs[-1].accepted}" in text
    desk.command("run annotation", user=OPERATOR)
    assert "no supervised job 'annotation'" in message_text(desk.later(2))


def test_viewers_cannot_change_anything(desk: Desk) -> None:
    for text, needed in (("pause", "operator"), ("run ingestion", "operator"), ("approve inc-x", "operator")):
        answer = desk.command(text, user=STRANGER)
        assert f"needs the *{needed}* role; you are a *viewer*" in answer.text
    assert not desk.world.sup.guardrails.is_paused("ingestion")
    assert desk.slack.of("hook") == [], "nothing was started"
    refused = [e for e in desk.audit(actor="slack:U0NOBODY")]
    assert [e.verdict for e in refused] == ["refused"] * 3


def test_a_malformed_command_says_how_and_is_audited(desk: Desk) -> None:
    answer = desk.command("approve", user=OPERATOR)
    assert answer.status == 200 and "/dataops approve ID" in answer.text
    entries = desk.audit(actor="slack:U0OPER")
    assert [(e.action, e.verdict) for e in entries] == [("chatops.invalid", "refused")]
    assert entries[0].args["command_line"] == "/dataops approve"
    assert entries[0].reason == "invalid: /dataops approve"


def test_every_command_is_audited_with_the_slack_user(desk: Desk) -> None:
    incident = desk.strike("stage_exception")
    texts = [
        "help", "status", "incidents all", f"show {incident}", "pause", "resume ingestion",
        "run ingestion", f"reject {incident} not now", "ask what is open?",
    ]
    for text in texts:
        assert desk.command(text, user=ADMIN).status == 200
    desk.chat.wait_idle(timeout=30)
    mine = [e for e in desk.audit(actor="slack:U0ADMIN") if e.action.startswith("chatops.")]
    assert [e.action for e in mine] == [f"chatops.{t.split()[0]}" for t in texts]
    assert all(e.verdict == "allowed" for e in mine)
    by_action = {e.action: e for e in mine}
    assert by_action["chatops.show"].incident_id == incident
    assert by_action["chatops.reject"].args["text"] == "not now"
    assert by_action["chatops.run"].pipeline == "ingestion"
    assert by_action["chatops.status"].args["channel"] == "C0OPS"
    assert by_action["chatops.reject"].reason == f"/dataops reject {incident} not now"
    assert desk.world.sup.guardrails.audit.verify().ok
