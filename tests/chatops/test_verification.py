"""Slack's request signing, verified by Bolt: a forged or stale request is
refused with 401 before anything runs."""

from __future__ import annotations

import time

from tests.chatops.conftest import ADMIN, Desk
from tests.fixtures.slack_requests import signed_headers, slash_command


def test_a_signed_request_is_answered(desk: Desk) -> None:
    answer = desk.command("help")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("application/json")


def test_a_forged_signature_is_refused_and_changes_nothing(desk: Desk) -> None:
    before = len(desk.audit())
    answer = desk.command("pause", user=ADMIN, secret="not-the-signing-secret")
    assert answer.status == 401
    assert not desk.world.sup.guardrails.is_paused("ingestion")
    assert len(desk.audit()) == before, "a refused request leaves no audit entry"
    assert desk.slack.of("auth.test") == [], "nothing past verification ran"


def test_a_tampered_body_is_refused(desk: Desk) -> None:
    body = slash_command("status", user=ADMIN, response_url=desk.slack.hook_url())
    headers = signed_headers(body)
    tampered = body.replace(b"text=status", b"text=pause")
    answer = desk.send(tampered, headers)
    assert answer.status == 401
    assert not desk.world.sup.guardrails.is_paused("ingestion")


def test_a_stale_timestamp_is_refused(desk: Desk) -> None:
    before = len(desk.audit())
    answer = desk.command("pause", user=ADMIN, timestamp=int(time.time()) - 6 * 60)
    assert answer.status == 401
    assert not desk.world.sup.guardrails.is_paused("ingestion")
    assert len(desk.audit()) == before


def test_a_request_without_signature_headers_is_refused(desk: Desk) -> None:
    body = slash_command("pause", user=ADMIN, response_url=desk.slack.hook_url())
    answer = desk.send(body, {"content-type": "application/x-www-form-urlencoded"})
    assert answer.status == 401
    assert not desk.world.sup.guardrails.is_paused("ingestion")


def test_a_body_that_is_not_utf8_is_a_bad_request(desk: Desk) -> None:
    body = b"text=\xff\xfe"
    assert desk.send(body).status == 400
