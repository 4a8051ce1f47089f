"""The agents' door to the world: validates arguments, gates every action
through the guardrails, runs it once per idempotency key, audits it."""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError

from app.errors import GuardrailError
from app.parsing import validation_summary
from guardrails import ActionRequest, Guardrails
from tools._base import Backend, InverseStep, ToolCall, ToolResult, ToolStatus
from tools._catalog import ACTION_TOOLS, OBSERVE_TOOLS, TOOLS

__all__ = ["ToolBox", "ActionOutcome"]

_log = structlog.get_logger("dataops.tools")

# Refusals a human can lift (approve, wait, resume the switch), as opposed to
# a request that is wrong whatever anyone says (out of bounds, unknown action).
_NEEDS_HUMAN = {"kill_switch", "attempts", "rate_limit", "in_flight"}


class ActionOutcome:
    """A finished action: its result and how to undo it."""

    def __init__(self, result: ToolResult, inverse: InverseStep | None, audit_seq: int | None) -> None:
        self.result = result
        self.inverse = inverse
        self.audit_seq = audit_seq


class ToolBox:
    def __init__(self, backend: Backend, guardrails: Guardrails, *, actor: str = "agent") -> None:
        self.backend = backend
        self.guardrails = guardrails
        self.actor = actor
        self.calls: list[dict[str, Any]] = []  # every call, for eval step counts and reports

    # -- observe -----------------------------------------------------------
    def observe(self, name: str, args: dict[str, Any] | None = None) -> ToolResult:
        cls = OBSERVE_TOOLS.get(name)
        if cls is None:
            return ToolResult.fail(name, f"no observe tool {name!r}")
        try:
            parsed = cls.args_model.model_validate(args or {})
        except ValidationError as exc:
            return ToolResult.fail(name, f"invalid {validation_summary(exc, root='arguments')}")
        result = self.backend.handle(ToolCall(tool=name, args=parsed.model_dump(), pipeline=getattr(parsed, "pipeline", None)))
        self.calls.append({"tool": name, "args": parsed.model_dump(), "status": str(result.status)})
        return result

    def observe_specs(self) -> list[dict[str, Any]]:
        """OpenAI-style function specs of the observe tools (the only ones an LLM may call)."""
        return [
            {
                "type": "function",
                "function": {
                    "name": cls.name,
                    "description": cls.description,
                    "parameters": cls.args_model.model_json_schema(),
                },
            }
            for cls in OBSERVE_TOOLS.values()
        ]

    # -- act ---------------------------------------------------------------
    def act(
        self,
        name: str,
        args: dict[str, Any],
        *,
        incident_id: str,
        idempotency_key: str,
        dry_run: bool = False,
        undo: bool = False,
        approved: bool = False,
    ) -> ActionOutcome:
        """Run one action through the guardrails. ``undo`` marks the recorded
        inverse of an action that ran: it puts back a value the pipeline
        already had, so config bounds do not apply (the kill switch, limits
        and the audit still do). An action whose tool asks for a human's
        approval (:meth:`approval_needed`) returns ``approval_required``
        unless ``approved`` says a human gave it."""
        cls = ACTION_TOOLS.get(name)
        if cls is None:
            known = "observe tool" if name in TOOLS else "tool"
            return ActionOutcome(ToolResult.fail(name, f"{name!r} is not an action {known}"), None, None)
        tool = cls()
        try:
            parsed = cls.args_model.model_validate(args)
        except ValidationError as exc:
            return ActionOutcome(ToolResult.fail(name, f"invalid {validation_summary(exc, root='arguments')}"), None, None)
        pipeline = str(parsed.model_dump()["pipeline"])
        change = None if undo else tool.config_change(parsed)
        old_value = None
        if change is not None:
            old_value = self._current_value(pipeline, getattr(parsed, "dataset", None), change[0])
        request = ActionRequest(
            action=name,
            pipeline=pipeline,
            incident_id=incident_id,
            args=parsed.model_dump(),
            actor=self.actor,
            idempotency_key=idempotency_key,
            config_key=None if change is None else change[0],
            new_value=None if change is None else change[1],
            old_value=old_value,
            dry_run=dry_run,
        )
        done, stored = self.guardrails.completed(idempotency_key)
        if done:
            # Ran before a restart: hand back what it returned, run nothing, audit nothing.
            result = ToolResult.model_validate(stored["result"])
            self.calls.append({"tool": name, "args": request.args, "replayed": True})
            inverse = tool.inverse(parsed, result, stored.get("old_value")) if result.is_ok else None
            return ActionOutcome(result, inverse, None)
        why = None if (approved or undo or dry_run) else tool.approval_needed(parsed, self.observe)
        if why:
            entry = self.guardrails.record(request, "refused", reason=f"approval: {why}")
            self.calls.append({"tool": name, "args": request.args, "verdict": why, "allowed": False})
            return ActionOutcome(
                ToolResult(tool=name, status=ToolStatus.APPROVAL_REQUIRED, error=f"needs a human's approval: {why}"),
                None,
                entry.seq,
            )
        verdict = self.guardrails.check(request)
        self.calls.append({"tool": name, "args": request.args, "verdict": verdict.reason, "allowed": verdict.allowed})
        if verdict.dry_run:
            return ActionOutcome(ToolResult.ok(name, {"dry_run": True, "verdict": verdict.reason}), None, verdict.audit_seq)
        if not verdict.allowed:
            status = ToolStatus.APPROVAL_REQUIRED if verdict.rule in _NEEDS_HUMAN else ToolStatus.ERROR
            return ActionOutcome(
                ToolResult(tool=name, status=status, error=f"refused by guardrails: {verdict.reason}"),
                None,
                verdict.audit_seq,
            )
        call = ToolCall(tool=name, args=request.args, pipeline=pipeline, incident_id=incident_id, idempotency_key=idempotency_key)
        try:
            raw = self.guardrails.run_once(
                idempotency_key,
                lambda: {"result": self.backend.handle(call).model_dump(mode="json"), "old_value": old_value},
                rerun_unfinished=cls.idempotent,
            )
        except GuardrailError as exc:
            # Started before a crash and not safe to repeat: a human must look.
            result = ToolResult(tool=name, status=ToolStatus.APPROVAL_REQUIRED, error=str(exc))
            self.guardrails.record(request, "failed", reason=str(exc))
            return ActionOutcome(result, None, None)
        result = ToolResult.model_validate(raw["result"])
        entry = self.guardrails.record(
            request,
            "executed" if result.is_ok else "failed",
            reason=result.error or "",
            result=result.data,
        )
        _log.info("action", tool=name, pipeline=pipeline, incident=incident_id, status=str(result.status))
        inverse = tool.inverse(parsed, result, old_value) if result.is_ok else None
        return ActionOutcome(result, inverse, entry.seq)

    def approval_needed(self, name: str, args: dict[str, Any]) -> str | None:
        """Why running action ``name`` with ``args`` now would need a human's
        approval; None when it would not (or is no valid action call, which
        :meth:`act` reports)."""
        cls = ACTION_TOOLS.get(name)
        if cls is None:
            return None
        try:
            parsed = cls.args_model.model_validate(args)
        except ValidationError:
            return None
        return cls().approval_needed(parsed, self.observe)

    def _current_value(self, pipeline: str, dataset: str | None, key: str) -> Any:
        res = self.observe("get_config", {"pipeline": pipeline, "dataset": dataset})
        if not res.is_ok or not isinstance(res.data, dict):
            return None
        return (res.data.get("values") or {}).get(key)
