"""The LLM diagnosis engine: a bounded tool-calling loop over the observe
tools, ending in a ``submit_diagnosis`` call that is parsed and validated.

The model reads; it never acts. It may only call the observe tools
(``ToolBox.observe_specs()``), at most ``max_tool_calls`` times; a call to
any other name is answered with an error and not run. Its answer is parsed
into pydantic and checked against the taxonomy, the playbook catalogue and
the signals before it becomes a :class:`~agents._diagnosis.Diagnosis`. A
malformed answer gets one corrective retry; a second one raises
:class:`~app.errors.LLMError`, and the caller falls back to the offline engine.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from agents._diagnosis import Diagnosis, DiagnosisRequest
from agents.llm._answer import SUBMIT_TOOL, SubmittedDiagnosis, check_answer, parse_submission, submit_spec
from agents.llm._chat import ChatBackend, ChatTurn, ToolCallRequest
from agents.llm._prompts import recall_examples, render_system, render_user
from app.errors import DataOpsError, LLMError
from tools._signals import Signal

if TYPE_CHECKING:
    from knowledge_base import IncidentMemory
    from playbooks import PlaybookCatalog
    from tools import ToolBox, ToolResult

__all__ = ["LLMDiagnosisEngine"]

_log = structlog.get_logger("dataops.agents.llm")

_MAX_RESULT_CHARS = 6000
_CORRECTIONS = 1


class LLMDiagnosisEngine:
    """Diagnosis by a chat model with function calling (see the module doc)."""

    def __init__(self, chat: ChatBackend, *, max_tool_calls: int = 6, max_turns: int = 8) -> None:
        if max_tool_calls < 0:
            raise ValueError("max_tool_calls must be at least 0")
        if max_turns < 1:
            raise ValueError("max_turns must be at least 1")
        self.chat = chat
        self.max_tool_calls = max_tool_calls
        self.max_turns = max_turns
        self.name = f"llm:{chat.name}"

    def diagnose(
        self,
        request: DiagnosisRequest,
        *,
        tools: ToolBox,
        playbooks: PlaybookCatalog,
        memory: IncidentMemory | None,
    ) -> Diagnosis:
        return _Session(self, request, tools, playbooks, memory).run()


class _Session:
    """One diagnosis: the conversation, the budgets and the token count."""

    def __init__(
        self,
        engine: LLMDiagnosisEngine,
        request: DiagnosisRequest,
        tools: ToolBox,
        catalog: PlaybookCatalog,
        memory: IncidentMemory | None,
    ) -> None:
        self.engine = engine
        self.request = request
        self.tools = tools
        self.catalog = catalog
        self.observe_specs = tools.observe_specs()
        self.observe_names = {spec["function"]["name"] for spec in self.observe_specs}
        self.submit = submit_spec(list(catalog.ids))
        self.observed: list[Signal] = []
        self.calls_made = 0
        self.tokens = 0
        examples = recall_examples(memory, request.signals, request.opened_at)
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": render_system(catalog, max_tool_calls=engine.max_tool_calls)},
            {
                "role": "user",
                "content": render_user(
                    incident_id=request.incident_id,
                    pipeline=request.pipeline,
                    dataset=request.dataset,
                    opened_at=request.opened_at,
                    signals=request.signals,
                    examples=examples,
                    max_tool_calls=engine.max_tool_calls,
                ),
            },
        ]

    # -- the loop ----------------------------------------------------------------
    def run(self) -> Diagnosis:
        engine = self.engine
        turns = corrections = 0
        force_answer = False
        while True:
            final = force_answer or self.calls_made >= engine.max_tool_calls or turns >= engine.max_turns - 1
            offered = [self.submit] if final else [*self.observe_specs, self.submit]
            turn = engine.chat.complete(self.messages, offered, tool_choice="required" if final else None)
            turns += 1
            self.tokens += turn.input_tokens + turn.output_tokens
            self.messages.append(_assistant_message(turn))

            answer, problem = self._read_answer(turn, final)
            if answer is not None:
                return self._diagnosis(answer, turns)  # any other call in this turn is moot: nothing runs
            for call in turn.tool_calls:
                self.messages.append(_tool_message(call, self._answer_call(call, problem, final)))
            if problem is None:
                if not turn.tool_calls:
                    # Talked instead of calling anything: ask for the answer.
                    self.messages.append({"role": "user", "content": f"Call {SUBMIT_TOOL} now with your diagnosis."})
                    force_answer = True
                continue
            corrections += 1
            _log.info("llm.malformed_answer", incident=self.request.incident_id, problem=problem, attempt=corrections)
            if corrections > _CORRECTIONS:
                raise LLMError(f"LLM {engine.chat.name} gave no valid diagnosis after a retry: {problem}")
            if not any(c.name == SUBMIT_TOOL for c in turn.tool_calls):
                self.messages.append({"role": "user", "content": _correction(problem)})
            force_answer = True

    def _read_answer(self, turn: ChatTurn, final: bool) -> tuple[SubmittedDiagnosis | None, str | None]:
        """The answer in this turn, or what is wrong with it; (None, None)
        when the model is still observing."""
        submits = [c for c in turn.tool_calls if c.name == SUBMIT_TOOL]
        if len(submits) > 1:
            return None, f"{SUBMIT_TOOL} was called {len(submits)} times; call it exactly once"
        if submits:
            call = submits[0]
            if call.error:
                return None, call.error
            parsed = parse_submission(call.arguments)
            return (parsed, None) if isinstance(parsed, SubmittedDiagnosis) else (None, parsed)
        if not turn.tool_calls and final:
            parsed_content = _answer_in_text(turn.content)
            if parsed_content is not None:
                return parsed_content, None
            return None, f"the answer must be a call to {SUBMIT_TOOL}, not text"
        if final:
            return None, f"only {SUBMIT_TOOL} may be called now"
        return None, None

    def _answer_call(self, call: ToolCallRequest, problem: str | None, final: bool) -> str:
        """The content of the tool message answering ``call`` (no valid answer came in this turn)."""
        if call.name == SUBMIT_TOOL:
            return _correction(problem or "invalid arguments")
        if call.name not in self.observe_names:
            self.calls_made += 1  # refused calls spend the budget too, so a model cannot loop on them
            _log.warning("llm.refused_tool", incident=self.request.incident_id, tool=call.name)
            allowed = ", ".join(sorted(self.observe_names))
            return _error(
                f"{_safe(call.name)} is not available: you may only call the read-only observe tools "
                f"({allowed}) and {SUBMIT_TOOL}. Nothing was run."
            )
        if final or self.calls_made >= self.engine.max_tool_calls:
            return _error(f"observe budget spent; nothing was run. Call {SUBMIT_TOOL} now.")
        if call.error:
            self.calls_made += 1
            return _error(call.error)
        self.calls_made += 1
        try:
            result = self.tools.observe(call.name, call.arguments)
        except DataOpsError as exc:  # a store behind the backend failed: the model hears it, the loop goes on
            return _error(f"{call.name} failed: {exc}")
        self.observed += _signals_in(result)
        return _render_result(result)

    # -- the answer --------------------------------------------------------------
    def _diagnosis(self, answer: SubmittedDiagnosis, turns: int) -> Diagnosis:
        checked = check_answer(
            answer,
            signals=[*self.request.signals, *self.observed],
            pipeline=self.request.pipeline,
            catalog=self.catalog,
        )
        summary = checked.summary
        if checked.notes:
            _log.info("llm.answer_corrected", incident=self.request.incident_id, notes=checked.notes)
            summary = f"{summary} [validation: {'; '.join(checked.notes)}]".strip()
        _log.info(
            "llm.diagnosis",
            incident=self.request.incident_id,
            root_cause=checked.root_cause.value,
            turns=turns,
            tool_calls=self.calls_made,
            tokens=self.tokens,
        )
        return Diagnosis(
            root_cause=checked.root_cause,
            confidence=checked.confidence,
            evidence=checked.evidence,
            summary=summary,
            candidates=checked.candidates,
            engine=self.engine.name,
            tokens=self.tokens,
            scores={checked.root_cause.value: checked.confidence},
        )


# -- messages ------------------------------------------------------------------------
def _assistant_message(turn: ChatTurn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.content}
    if turn.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in turn.tool_calls
        ]
    return message


def _tool_message(call: ToolCallRequest, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}


def _correction(problem: str) -> str:
    return _error(
        f"your diagnosis was not accepted: {problem}. Call {SUBMIT_TOOL} exactly once with root_cause from "
        "the taxonomy, confidence between 0 and 1, evidence copied from the signals, a summary and playbooks "
        "from the catalogue."
    )


def _error(text: str) -> str:
    return json.dumps({"status": "error", "error": text})


def _render_result(result: ToolResult) -> str:
    text = json.dumps(result.model_dump(mode="json", exclude_none=True), default=str)
    if len(text) > _MAX_RESULT_CHARS:
        text = text[: _MAX_RESULT_CHARS - 40] + f"... [truncated, {len(text)} chars in all]"
    return text


def _signals_in(result: ToolResult) -> list[Signal]:
    """Signals an observe tool returned, so that evidence may quote them too."""
    data = result.data
    if isinstance(data, dict):
        data = data.get("signals")
    if not result.is_ok or not isinstance(data, list):
        return []
    found: list[Signal] = []
    for item in data:
        if isinstance(item, dict) and "kind" in item:
            try:
                found.append(Signal.model_validate(item))
            except ValidationError:
                continue
    return found


def _answer_in_text(content: str) -> SubmittedDiagnosis | None:
    """An answer a model wrote as a JSON object instead of calling the function."""
    start, end = content.find("{"), content.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(content[start : end + 1])
    except json.JSONDecodeError:
        return None
    if isinstance(value, dict) and isinstance(value.get("arguments"), dict):
        value = value["arguments"]  # {"name": "submit_diagnosis", "arguments": {...}}
    if not isinstance(value, dict) or "root_cause" not in value:
        return None
    parsed = parse_submission(value)
    return parsed if isinstance(parsed, SubmittedDiagnosis) else None


def _safe(name: str) -> str:
    clean = "".join(ch for ch in name if ch.isalnum() or ch in "_-.")[:64]
    return repr(clean or "?")
