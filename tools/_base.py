"""Tools: typed classes, results with a status, one backend interface.

A tool never raises for a failure of the world: it returns a ``ToolResult``
whose status says what happened. Action tools declare their risk, whether
they are safe to repeat, and how to undo them.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from guardrails import Risk

__all__ = [
    "ToolStatus",
    "ToolResult",
    "ToolCall",
    "Backend",
    "Tool",
    "ObserveTool",
    "ActionTool",
    "InverseStep",
    "Args",
    "ScopeArgs",
]


class ToolStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    NO_DATA = "no_data"
    APPROVAL_REQUIRED = "approval_required"


class ToolResult(BaseModel):
    tool: str
    status: ToolStatus
    data: Any = None
    error: str | None = None

    @classmethod
    def ok(cls, tool: str, data: Any = None) -> ToolResult:
        return cls(tool=tool, status=ToolStatus.OK, data=data)

    @classmethod
    def fail(cls, tool: str, error: str, data: Any = None) -> ToolResult:
        return cls(tool=tool, status=ToolStatus.ERROR, error=error, data=data)

    @classmethod
    def no_data(cls, tool: str, reason: str = "") -> ToolResult:
        return cls(tool=tool, status=ToolStatus.NO_DATA, error=reason or None)

    @property
    def is_ok(self) -> bool:
        return self.status == ToolStatus.OK


class ToolCall(BaseModel):
    """What a backend is asked to do; arguments already validated."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    pipeline: str | None = None
    incident_id: str | None = None
    idempotency_key: str | None = None


class Backend(Protocol):
    """The world, live or recorded. One method."""

    def handle(self, call: ToolCall) -> ToolResult: ...


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeArgs(Args):
    """Which pipeline (and dataset) a tool looks at or acts on."""

    pipeline: str = Field(description="ingestion | annotation | enrichment")
    dataset: str | None = Field(default=None, description="The dataset; default the pipeline's supervised one.")


class InverseStep(BaseModel):
    tool: str
    args: dict[str, Any]


class Tool:
    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[Args]] = Args
    kind: ClassVar[Literal["observe", "action"]]


class ObserveTool(Tool):
    kind = "observe"


class ActionTool(Tool):
    kind = "action"
    risk: ClassVar[Risk]
    # Safe to run again after a crash left it unfinished.
    idempotent: ClassVar[bool] = False
    # True when the action changes nothing a rollback must undo.
    mutating: ClassVar[bool] = True

    def config_change(self, args: Args) -> tuple[str, Any] | None:
        """(tunable, new value) when this action changes config: bounds apply."""
        return None

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        """How to undo this action, from its arguments and what it returned."""
        return None

    def approval_needed(self, args: Args, observe: Callable[[str, dict[str, Any]], ToolResult]) -> str | None:
        """Why this call needs a human's approval before it runs (None: it
        does not), judged from the world through ``observe`` and the config,
        never from whoever asks for it."""
        return None
