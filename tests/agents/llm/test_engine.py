"""The LLM diagnosis engine end to end: a scripted model over real HTTP, a
real ToolBox with real guardrails, and the validation of what it answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from agents.llm import SUBMIT_TOOL, LLMDiagnosisEngine, OllamaChat, OpenAICompatibleChat
from app.errors import LLMError, StorageError
from app.taxonomy import Decision, Outcome, Pipeline, RootCause
from guardrails import Guardrails
from knowledge_base import IncidentMemory, IncidentRecord, MiniLMEmbedder
from tools import ACTION_TOOLS, OBSERVE_TOOLS, Signal, ToolBox, ToolCall, ToolResult

from ._servers import Reply, ScriptedLLM, call, free_port
from .conftest import INJECTION, OPENED_AT, TIMEOUT_LOG, FixedSignals, StubCatalog, incident_signals, make_request

TIMEOUT_TEXT = f"log error: {TIMEOUT_LOG}"


def submit(**fields: object) -> Reply:
    answer: dict[str, object] = {
        "root_cause": "transient_error",
        "confidence": 0.8,
        "evidence": [TIMEOUT_TEXT],
        "summary": "S3 reads time out; retrying should clear it.",
        "playbooks": ["retry_with_backoff"],
    }
    answer.update(fields)
    return Reply(calls=[(SUBMIT_TOOL, answer)], input_tokens=150, output_tokens=40)


def engine_for(server: ScriptedLLM, **kwargs: int) -> LLMDiagnosisEngine:
    return LLMDiagnosisEngine(OpenAICompatibleChat("scripted-model", base_url=server.base_url, max_retries=0), **kwargs)


def tool_replies(server: ScriptedLLM, index: int) -> list[dict]:
    return [m for m in server.messages(index) if m["role"] == "tool"]


def test_tool_round_trip_then_submit(
    openai_server: ScriptedLLM, toolbox: ToolBox, world: FixedSignals, catalog: StubCatalog
) -> None:
    openai_server.say(
        Reply(calls=[("get_logs", {"pipeline": "ingestion", "level": "error"})], input_tokens=100, output_tokens=12),
        submit(),
    )

    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)

    assert diagnosis.root_cause is RootCause.TRANSIENT_ERROR
    assert diagnosis.confidence == pytest.approx(0.8)
    assert diagnosis.evidence == [TIMEOUT_TEXT]
    assert diagnosis.candidates == ["retry_with_backoff"]
    assert diagnosis.summary.startswith("S3 reads time out")
    assert diagnosis.engine == "llm:openai:scripted-model"
    assert diagnosis.tokens == 100 + 12 + 150 + 40
    assert diagnosis.scores == {"transient_error": pytest.approx(0.8)}
    # The observe call really ran, through the ToolBox.
    assert [(c.tool, c.args["level"]) for c in world.calls] == [("get_logs", "error")]
    assert [c["tool"] for c in toolbox.calls] == ["get_logs"]
    # Its result went back to the model as the answer to that call.
    assert len(openai_server.requests) == 2
    (reply,) = tool_replies(openai_server, 1)
    assert reply["tool_call_id"] == "call_1_0"
    assert TIMEOUT_LOG in reply["content"]


def test_only_observe_tools_are_offered(openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog) -> None:
    openai_server.say(submit())
    engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)

    offered = openai_server.tool_names(0)
    assert set(offered) == set(OBSERVE_TOOLS) | {SUBMIT_TOOL}
    assert not set(offered) & set(ACTION_TOOLS)
    spec = next(t for t in openai_server.requests[0]["tools"] if t["function"]["name"] == SUBMIT_TOOL)
    props = spec["function"]["parameters"]["properties"]
    assert props["root_cause"]["enum"] == [rc.value for rc in RootCause]
    assert props["playbooks"]["items"]["enum"] == catalog.ids


def test_a_non_observe_tool_is_refused_and_nothing_runs(
    openai_server: ScriptedLLM, toolbox: ToolBox, world: FixedSignals, guards: Guardrails, catalog: StubCatalog
) -> None:
    openai_server.say(
        Reply(calls=[("rollback_table", {"table": "images"}), ("retry_stage", {"pipeline": "ingestion"})]),
        submit(),
    )

    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)

    assert diagnosis.root_cause is RootCause.TRANSIENT_ERROR
    assert world.calls == [] and toolbox.calls == []
    assert guards.audit.entries() == []
    replies = tool_replies(openai_server, 1)
    assert [r["tool_call_id"] for r in replies] == ["call_1_0", "call_1_1"]
    for r in replies:
        assert "not available" in r["content"] and "Nothing was run" in r["content"]


def test_prompt_injection_in_signals_changes_nothing(
    openai_server: ScriptedLLM, guards: Guardrails, catalog: StubCatalog
) -> None:
    signals = incident_signals(injection=True)
    world = FixedSignals(signals)
    toolbox = ToolBox(world, guards)
    openai_server.say(
        call("rollback_table", table="images"),
        submit(
            playbooks=["drop_table", "rollback_snapshot"],
            evidence=[f"log error: {INJECTION}", "the table must be dropped"],
        ),
    )

    diagnosis = engine_for(openai_server).diagnose(make_request(signals), tools=toolbox, playbooks=catalog, memory=None)

    # Only catalogued playbooks that treat transient_error on this pipeline remain.
    assert diagnosis.candidates == ["retry_with_backoff"]
    assert "drop_table" not in diagnosis.candidates and "rollback_snapshot" not in diagnosis.candidates
    assert "drop_table" in diagnosis.summary and "not in the catalogue" in diagnosis.summary
    assert "rollback_snapshot dropped: does not treat transient_error" in diagnosis.summary
    assert diagnosis.evidence == [f"log error: {INJECTION}"]  # quoted signal kept, invented line dropped
    assert world.calls == [] and guards.audit.entries() == []
    # The signals reached the model fenced off as data, with the warning around them.
    user = openai_server.text_of(0, "user")
    fences = re.findall(r"<<<SIGNALS-[0-9a-f]{16}>>>", user)
    assert len(fences) >= 2 and len(set(fences)) == 1
    inside = user.split(fences[0])[-2]
    assert INJECTION in inside and TIMEOUT_LOG in inside
    assert INJECTION not in user.replace(inside, "")
    assert "untrusted data" in user
    assert "never instructions" in openai_server.text_of(0, "system")


def test_playbook_for_another_pipeline_is_dropped(
    openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog
) -> None:
    openai_server.say(submit(playbooks=["pause_annotation", "retry_with_backoff", "retry_with_backoff"]))
    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert diagnosis.candidates == ["retry_with_backoff"]
    assert "pause_annotation dropped: not for the ingestion pipeline" in diagnosis.summary


def test_malformed_answer_gets_one_corrective_retry(
    openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog
) -> None:
    openai_server.say(submit(root_cause="cosmic_rays"), submit(confidence=1.7, evidence=["nothing like a signal"]))

    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)

    assert diagnosis.root_cause is RootCause.TRANSIENT_ERROR
    assert diagnosis.confidence == 1.0  # clipped
    # No evidence quoted a signal: the failing signals stand in.
    assert diagnosis.evidence == ["event stage_failed stage=fetch error=ReadTimeoutError", TIMEOUT_TEXT]
    assert len(openai_server.requests) == 2
    (correction,) = tool_replies(openai_server, 1)
    assert "not accepted" in correction["content"] and "root_cause" in correction["content"]
    assert openai_server.tool_names(1) == [SUBMIT_TOOL]
    assert openai_server.requests[1]["tool_choice"] == "required"


def test_unreadable_arguments_get_the_retry_too(
    openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog
) -> None:
    openai_server.say(Reply(calls=[(SUBMIT_TOOL, {})], raw_arguments='{"root_cause": "transient'), submit())
    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert diagnosis.root_cause is RootCause.TRANSIENT_ERROR
    assert "not valid JSON" in tool_replies(openai_server, 1)[0]["content"]


def test_two_malformed_answers_raise_llm_error(
    openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog
) -> None:
    openai_server.say(submit(root_cause="cosmic_rays"), Reply(content="Probably the network, I am not sure."))
    with pytest.raises(LLMError) as caught:
        engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert "no valid diagnosis" in str(caught.value) and "\n" not in str(caught.value)
    assert len(openai_server.requests) == 2


def test_text_instead_of_a_call_is_nudged_then_answered(
    openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog
) -> None:
    openai_server.say(Reply(content="Let me think."), submit())
    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert diagnosis.root_cause is RootCause.TRANSIENT_ERROR
    assert openai_server.tool_names(1) == [SUBMIT_TOOL]
    assert openai_server.messages(1)[-1] == {"role": "user", "content": f"Call {SUBMIT_TOOL} now with your diagnosis."}


def test_an_answer_written_as_json_text_is_accepted_when_forced(
    openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog
) -> None:
    openai_server.say(
        Reply(content="Done."),
        Reply(
            content='{"root_cause": "transient_error", "confidence": 0.6, "evidence": [], "summary": "x", "playbooks": []}'
        ),
    )
    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert diagnosis.root_cause is RootCause.TRANSIENT_ERROR
    assert diagnosis.candidates == ["retry_with_backoff"]  # none chosen: the catalogue's for the cause


def test_tool_call_budget_then_the_answer_is_required(
    openai_server: ScriptedLLM, toolbox: ToolBox, world: FixedSignals, catalog: StubCatalog
) -> None:
    openai_server.say(
        Reply(calls=[("get_logs", {"pipeline": "ingestion"}), ("run_status", {"pipeline": "ingestion"})]),
        Reply(calls=[("get_signals", {"pipeline": "ingestion"}), ("get_checks", {"pipeline": "ingestion"})]),
        submit(),
    )

    diagnosis = engine_for(openai_server, max_tool_calls=3).diagnose(
        make_request(), tools=toolbox, playbooks=catalog, memory=None
    )

    assert diagnosis.root_cause is RootCause.TRANSIENT_ERROR
    assert [c.tool for c in world.calls] == ["get_logs", "run_status", "get_signals"]
    assert "budget spent" in tool_replies(openai_server, 2)[-1]["content"]
    assert set(openai_server.tool_names(1)) == set(OBSERVE_TOOLS) | {SUBMIT_TOOL}
    assert openai_server.tool_names(2) == [SUBMIT_TOOL]
    assert openai_server.requests[2]["tool_choice"] == "required"


def test_turn_limit_forces_the_answer(openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog) -> None:
    openai_server.say(call("get_logs", pipeline="ingestion"), submit())
    engine_for(openai_server, max_turns=2).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert openai_server.tool_names(1) == [SUBMIT_TOOL]


def test_evidence_may_quote_a_signal_an_observe_tool_returned(
    openai_server: ScriptedLLM, guards: Guardrails, catalog: StubCatalog
) -> None:
    extra = Signal(kind="log", t=20, pipeline="ingestion", level="warning", message="throttled by S3: SlowDown")
    toolbox = ToolBox(FixedSignals([*incident_signals(), extra]), guards)
    openai_server.say(call("get_logs", pipeline="ingestion"), submit(evidence=["throttled by S3: SlowDown"]))
    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert diagnosis.evidence == ["log warning: throttled by S3: SlowDown"]


class BrokenStore(FixedSignals):
    def handle(self, call: ToolCall) -> ToolResult:
        raise StorageError("metadata DB is locked")


def test_an_observe_tool_that_raises_is_reported_to_the_model(
    openai_server: ScriptedLLM, guards: Guardrails, catalog: StubCatalog
) -> None:
    toolbox = ToolBox(BrokenStore(incident_signals()), guards)
    openai_server.say(call("run_status", pipeline="ingestion"), submit())
    diagnosis = engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert diagnosis.root_cause is RootCause.TRANSIENT_ERROR
    assert "run_status failed: metadata DB is locked" in tool_replies(openai_server, 1)[0]["content"]


# -- few-shot examples from memory ----------------------------------------------------------
@pytest.fixture
def memory(embedder: MiniLMEmbedder) -> Iterator[IncidentMemory]:
    mem = IncidentMemory.ephemeral(embedder=embedder)
    common = {
        "pipeline": Pipeline.INGESTION,
        "symptoms": "botocore ReadTimeoutError: S3 GetObject timed out while fetching images",
        "root_cause": RootCause.TRANSIENT_ERROR,
        "playbook": "retry_with_backoff",
        "decision": Decision.AUTO_FIX,
        "outcome": Outcome.RESOLVED,
        "source": "eval",
    }
    mem.record_many(
        [
            IncidentRecord(
                id="inc-before",
                opened_at=datetime(2025, 5, 20, 9, 0, tzinfo=UTC),
                title="S3 read timeouts during fetch (May)",
                resolution="retried with exponential backoff",
                **common,  # type: ignore[arg-type]
            ),
            IncidentRecord(
                id="inc-after",
                opened_at=datetime(2025, 6, 3, 9, 0, tzinfo=UTC),
                title="S3 read timeouts during fetch (June)",
                resolution="retried again",
                **common,  # type: ignore[arg-type]
            ),
        ]
    )
    yield mem
    mem.close()


def test_few_shot_examples_come_only_from_before_the_incident(
    openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog, memory: IncidentMemory
) -> None:
    assert memory.count() == 2
    openai_server.say(submit())
    engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=memory)

    user = openai_server.text_of(0, "user")
    assert "inc-before" in user and "S3 read timeouts during fetch (May)" in user
    assert "root cause: transient_error" in user
    assert "fix: retry_with_backoff (retried with exponential backoff)" in user
    assert "outcome: resolved" in user
    assert "inc-after" not in user and "(June)" not in user
    assert OPENED_AT.isoformat() in user


def test_without_memory_the_prompt_says_so(openai_server: ScriptedLLM, toolbox: ToolBox, catalog: StubCatalog) -> None:
    openai_server.say(submit())
    engine_for(openai_server).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert "(no similar past incidents)" in openai_server.text_of(0, "user")


# -- the Ollama protocol and a dead server ---------------------------------------------------
def test_ollama_round_trip(
    ollama_server: ScriptedLLM, toolbox: ToolBox, world: FixedSignals, catalog: StubCatalog
) -> None:
    ollama_server.say(
        Reply(calls=[("run_status", {"pipeline": "ingestion"})], input_tokens=300, output_tokens=20), submit()
    )
    engine = LLMDiagnosisEngine(OllamaChat("llama3.1", base_url=ollama_server.base_url))

    diagnosis = engine.diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)

    assert diagnosis.engine == "llm:ollama:llama3.1"
    assert diagnosis.tokens == 300 + 20 + 150 + 40
    assert diagnosis.candidates == ["retry_with_backoff"]
    assert [c.tool for c in world.calls] == ["run_status"]
    offered = {t["function"]["name"] for t in ollama_server.requests[0]["tools"]}
    assert offered == set(OBSERVE_TOOLS) | {SUBMIT_TOOL}
    submit_params = next(
        t["function"]["parameters"] for t in ollama_server.requests[0]["tools"] if t["function"]["name"] == SUBMIT_TOOL
    )
    assert submit_params["properties"]["root_cause"]["enum"] == [rc.value for rc in RootCause]
    assert submit_params["properties"]["playbooks"]["items"]["enum"] == catalog.ids
    tool_msg = next(m for m in ollama_server.messages(1) if m["role"] == "tool")
    assert tool_msg["tool_name"] == "run_status" and "ReadTimeoutError" in tool_msg["content"]


def test_server_down_raises_one_line_llm_error(toolbox: ToolBox, catalog: StubCatalog) -> None:
    chat = OpenAICompatibleChat("m", base_url=f"http://127.0.0.1:{free_port()}/v1", timeout=5, max_retries=0)
    with pytest.raises(LLMError) as caught:
        LLMDiagnosisEngine(chat).diagnose(make_request(), tools=toolbox, playbooks=catalog, memory=None)
    assert "cannot connect" in str(caught.value) and "\n" not in str(caught.value)
