"""A supervised ingestion job, chat-ops over it with the reference backend,
and a fake Slack Web API; requests are signed as Slack signs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from app.chatops import ChatOps, RuntimeOpsBackend, build_chatops
from app.settings import Settings
from evals.faults import make_fault
from guardrails import AuditEntry
from pipelines.runtime import Runtime
from tests.agents.conftest import World, make_world
from tests.fixtures.slack_api import BOT_TOKEN, CHANNEL_ID, FakeSlack
from tests.fixtures.slack_requests import SIGNING_SECRET, button_click, signed_headers, slash_command

ADMIN, OPERATOR, VIEWER, STRANGER = "U0ADMIN", "U0OPER", "U0VIEW", "U0NOBODY"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.raw))

    @property
    def text(self) -> str:
        """The fallback text and every mrkdwn/plain text in the blocks."""
        return message_text(self.json)


def message_text(message: dict[str, Any]) -> str:
    parts = [str(message.get("text") or "")]
    for block in message.get("blocks") or []:
        if "text" in block:
            parts.append(str(block["text"].get("text")))
        for el in block.get("elements") or []:
            if isinstance(el.get("text"), str):
                parts.append(el["text"])
    return "\n".join(parts)


@dataclass
class Desk:
    """The Slack side of a test: sends signed requests to chat-ops."""

    chat: ChatOps
    slack: FakeSlack
    world: World

    @property
    def rt(self) -> Runtime:
        return self.world.rt

    def send(self, body: bytes, headers: dict[str, str] | None = None) -> Answer:
        status, out_headers, raw = self.chat.handle_request(body, headers or signed_headers(body))
        return Answer(status, out_headers, raw)

    def command(self, text: str, user: str = OPERATOR, **sign: Any) -> Answer:
        body = slash_command(text, user=user, response_url=self.slack.hook_url(f"cmd-{user}"))
        return self.send(body, signed_headers(body, **sign))

    def later(self, count: int = 1) -> dict[str, Any]:
        """The ``count``-th message posted to a response_url."""
        return self.slack.wait_for("hook", count)[count - 1].body

    def click(self, action: str, incident: str, user: str = OPERATOR, message_ts: str | None = None) -> Answer:
        ts = message_ts or self.slack.post_message(f"incident {incident}")
        body = button_click(action, incident, user=user, response_url=self.slack.hook_url(f"btn-{user}"), message_ts=ts)
        return self.send(body)

    def audit(self, *, actor: str | None = None, incident: str | None = None) -> list[AuditEntry]:
        q = select(AuditEntry).order_by(AuditEntry.seq)  # type: ignore[arg-type]
        if actor is not None:
            q = q.where(AuditEntry.actor == actor)
        if incident is not None:
            q = q.where(AuditEntry.incident_id == incident)
        with Session(self.rt.engine) as s:
            return list(s.exec(q))

    def strike(self, fault: str) -> str:
        """A fault on the next batch; the id of the one incident it opens."""
        f = make_fault(fault)
        self.world.land()
        if f.between_runs:
            self.world.job.run(self.rt)
            f.apply(self.world.job, self.rt)
        else:
            f.apply(self.world.job, self.rt)
            self.world.job.run(self.rt)
        opened = self.world.sup.cycle()
        assert len(opened) == 1, [o.id for o in opened]
        return opened[0].id

    def waiting_incident(self) -> str:
        """An incident whose fix waits for approval: auto-fix is paused when it opens."""
        guards = self.world.sup.guardrails
        guards.pause("*", by="test", reason="hold fixes for a human")
        incident = self.strike("transient_source_errors")
        guards.resume("*", by="test")
        assert self.world.sup.store.get(incident).status == "pending_approval"
        return incident


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def roles_file(tmp_path: Path) -> Path:
    path = tmp_path / "slack-roles.yaml"
    path.write_text(f"users:\n  {ADMIN}: admin\n  {OPERATOR}: operator\n  {VIEWER}: viewer\n")
    return path


def chat_settings(settings: Settings, slack: FakeSlack, roles: Path | None) -> Settings:
    return settings.model_copy(
        update={
            "slack_signing_secret": SecretStr(SIGNING_SECRET),
            "slack_bot_token": SecretStr(BOT_TOKEN),
            "slack_channel": CHANNEL_ID,
            "slack_api_url": slack.api_url,
            "slack_roles": roles,
        }
    )


@pytest.fixture
def world(runtime: Runtime, tmp_path: Path) -> Iterator[World]:
    yield from make_world(runtime, tmp_path)


@pytest.fixture
def desk(world: World, slack: FakeSlack, roles_file: Path) -> Iterator[Desk]:
    ops = RuntimeOpsBackend(world.rt, world.sup, chat=None)
    chat = build_chatops(ops, chat_settings(world.rt.settings, slack, roles_file))
    yield Desk(chat, slack, world)
    chat.close()
    ops.close()
