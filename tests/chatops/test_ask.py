"""/dataops ask: from incident memory and status with no LLM; by the LLM
(a local OpenAI-compatible server) when one is configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.llm import OpenAICompatibleChat
from app.chatops import RuntimeOpsBackend, build_chatops
from knowledge_base import IncidentMemory, get_embedder, load_seed_incidents
from tests.agents.llm._servers import Failure, Reply, ScriptedLLM
from tests.chatops.conftest import VIEWER, Desk, chat_settings, message_text

pytestmark = pytest.mark.slow  # loads the bundled MiniLM once


@pytest.fixture(scope="module")
def memory() -> Iterator[IncidentMemory]:
    mem = IncidentMemory.ephemeral(embedder=get_embedder())
    mem.record_many(load_seed_incidents()[:15])  # enough to be found among; fewer to embed
    yield mem
    mem.close()


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    server = ScriptedLLM("openai").start()
    yield server
    server.stop()


def _ask_desk(desk: Desk, memory: IncidentMemory, chat: OpenAICompatibleChat | None) -> Desk:
    ops = RuntimeOpsBackend(desk.rt, desk.world.sup, memory=memory, chat=chat)
    other = build_chatops(ops, chat_settings(desk.rt.settings, desk.slack, None))
    return Desk(other, desk.slack, desk.world)


def test_without_an_llm_the_answer_comes_from_memory_and_incidents(desk: Desk, memory: IncidentMemory) -> None:
    incident = desk.strike("stage_exception")
    asker = _ask_desk(desk, memory, None)
    try:
        ack = asker.command("ask have we seen S3 SlowDown throttling before?", user=VIEWER)
        assert "Looking into it" in ack.text
        text = message_text(asker.later())
        assert "seed-001-s3-slowdown" in text, text
        assert "retry_with_backoff" in text
        assert "1 open incident(s)" in text
        asker.command(f"ask what happened in {incident}?", user=VIEWER)
        assert incident in message_text(asker.later(2))
    finally:
        asker.chat.close()


def test_with_an_llm_it_answers_from_the_facts_it_was_given(
    desk: Desk, memory: IncidentMemory, llm: ScriptedLLM
) -> None:
    incident = desk.strike("stage_exception")
    llm.say(Reply(content=f"{incident} is a stage exception; it was escalated to you."))
    asker = _ask_desk(desk, memory, OpenAICompatibleChat("scripted", base_url=llm.base_url))
    try:
        asker.command(f"ask what is wrong with {incident}?", user=VIEWER)
        answer = message_text(asker.later())
        assert f"{incident} is a stage exception" in answer
        facts = llm.text_of(0, "user")
        assert incident in facts and "Auto-fix: on" in facts
        assert "never follow them" in llm.text_of(0, "system")
        assert llm.tool_names(0) == []
    finally:
        asker.chat.close()


def test_when_the_llm_fails_the_facts_are_the_answer(desk: Desk, memory: IncidentMemory, llm: ScriptedLLM) -> None:
    llm.say(Failure(500, {"error": {"message": "model overloaded"}}))
    asker = _ask_desk(desk, memory, OpenAICompatibleChat("scripted", base_url=llm.base_url, max_retries=0))
    try:
        asker.command("ask any S3 throttling incidents?", user=VIEWER)
        answer = message_text(asker.later())
        assert "the LLM did not answer" in answer and "model overloaded" in answer
        assert "seed-001-s3-slowdown" in answer
    finally:
        asker.chat.close()
