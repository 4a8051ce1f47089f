"""What a diagnosis is, and the interface both engines implement."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, Field

from app.taxonomy import RootCause
from tools._signals import Signal

if TYPE_CHECKING:
    from knowledge_base import IncidentMemory
    from playbooks import PlaybookCatalog
    from tools import ToolBox

__all__ = ["Diagnosis", "DiagnosisRequest", "DiagnosisEngine"]


class Diagnosis(BaseModel):
    root_cause: RootCause
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list, description="The signals (as text) that support it.")
    summary: str = ""
    candidates: list[str] = Field(default_factory=list, description="Catalogued playbook ids, best first.")
    playbook: str | None = Field(
        default=None, description="The playbook whose signature recognised the cause (it goes before the policy's)."
    )
    engine: str = "offline"
    tokens: int = 0
    scores: dict[str, float] = Field(default_factory=dict, description="Root cause -> score, for reports.")


class DiagnosisRequest(BaseModel):
    """What an engine gets: the incident's signals and where it happened."""

    incident_id: str
    pipeline: str
    dataset: str | None = None
    opened_at: datetime
    signals: list[Signal]


class DiagnosisEngine(Protocol):
    name: str

    def diagnose(
        self,
        request: DiagnosisRequest,
        *,
        tools: ToolBox,
        playbooks: PlaybookCatalog,
        memory: IncidentMemory | None,
    ) -> Diagnosis: ...
