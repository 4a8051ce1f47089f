"""Signals: what the world shows the agents, in one shape for every backend.

The live backend turns run events, metrics, check results and logs into
signals; the replay backend serves a recorded case's signals. The monitor's
rules and the diagnosis engines only ever see these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Signal", "SignalKind"]

SignalKind = Literal["event", "metric", "log", "check"]


class Signal(BaseModel):
    """One observation. ``t`` is seconds on the observing clock (the case's
    clock in replay, seconds since the supervisor started live)."""

    model_config = ConfigDict(extra="allow")

    kind: SignalKind
    t: float = 0.0
    ts: datetime | None = None
    pipeline: str | None = None
    dataset: str | None = None
    # event
    type: str | None = None
    stage: str | None = None
    error: str | None = None
    # metric
    name: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    value: float | None = None
    # log
    level: str | None = None
    message: str | None = None
    # check
    status: str | None = None
    observed: Any = None
    expected: Any = None

    @property
    def failing(self) -> bool:
        """Whether this signal by itself shows something wrong."""
        if self.kind == "event":
            kind = (self.type or "").lower()
            # A retry that is still under way, or something that recovered, is not a failure.
            if any(word in kind for word in ("retry", "retrying", "recovered", "succeeded", "resumed")):
                return False
            return bool(self.error) or kind.endswith(("failed", "failure", "error", "timeout", "killed", "crashed"))
        if self.kind == "log":
            return (self.level or "").lower() in ("error", "critical", "fatal")
        if self.kind == "check":
            return (self.status or "").lower() in ("fail", "failed", "error")
        return False

    def text(self) -> str:
        """A one-line rendering, for evidence, memory queries and LLM prompts."""
        if self.kind == "event":
            parts = [f"event {self.type}"]
            if self.stage:
                parts.append(f"stage={self.stage}")
            if self.error:
                parts.append(f"error={self.error}")
            extra = {k: v for k, v in (self.model_extra or {}).items() if v is not None}
            parts += [f"{k}={v}" for k, v in sorted(extra.items())]
            return " ".join(parts)
        if self.kind == "metric":
            labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
            return f"metric {self.name}{{{labels}}} = {self.value}"
        if self.kind == "log":
            return f"log {self.level}: {self.message}"
        return f"check {self.name} {self.status} observed={self.observed} expected={self.expected}"
