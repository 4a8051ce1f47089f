"""The incident state the graph carries, the settings the agents follow, and
the typed context every node receives (no globals)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from agents._diagnosis import DiagnosisEngine
    from agents._store import IncidentStore
    from knowledge_base import IncidentMemory
    from playbooks import PlaybookCatalog
    from tools import ToolBox

__all__ = ["IncidentState", "AgentSettings", "AgentContext", "Clock", "WallClock", "SimClock", "MetricAlert"]


class IncidentState(TypedDict, total=False):
    incident_id: str
    pipeline: str
    dataset: str | None
    cursor_t: float
    # Live reading by event id (absent: by time only, as in replay): the
    # highest id read, and the ids read within the late-commit window -> t.
    cursor_event_id: int
    recent_event_ids: dict[str, float]
    opened_at: str
    opened_t: float
    quiet: bool
    joined: str | None
    signals: list[dict[str, Any]]
    diagnosis: dict[str, Any] | None
    decision: str | None
    first_decision: str | None
    decision_reasons: list[str]
    risk_score: float
    act_first: bool
    candidates: list[str]
    tried: list[str]
    playbook: str | None
    attempt: int
    actions: list[dict[str, Any]]
    action_t: float | None
    act_ok: bool
    needs_human: bool
    validation: dict[str, Any] | None
    status: str
    approval: dict[str, Any] | None
    notes: list[str]
    resolved_t: float | None


class MetricAlert(BaseModel):
    """A pipeline's reported metric that opens an incident when it crosses
    ``value``; series whose label ``key`` has one of ``skip[key]`` never do."""

    name: str = Field(min_length=1, description="The metric's exact name.")
    op: Literal[">", ">=", "<", "<="]
    value: float
    skip: dict[str, list[str]] = Field(default_factory=dict)

    def fires(self, name: str | None, value: float | None, labels: dict[str, str]) -> bool:
        if name != self.name or value is None:
            return False
        if any(labels.get(k) in vs for k, vs in self.skip.items()):
            return False
        return {">": value > self.value, ">=": value >= self.value, "<": value < self.value,
                "<=": value <= self.value}[self.op]


# What the annotation and enrichment pipelines report after each run that
# means something is wrong (their metric names; ingestion's floods are judged
# on its run ratios). Below these, figures are noise of a healthy pipeline:
# Fleiss' kappa of 0.4-0.6 is moderate agreement; a run audits a few dozen
# auto-labels at most, so a well calibrated model can see a fifth or a
# quarter of them overruled by chance; a backlog people clear within two
# days is normal.
DEFAULT_METRIC_ALERTS: tuple[MetricAlert, ...] = (
    MetricAlert(name="annotation_agreement", op="<", value=0.4),
    MetricAlert(name="annotator_outlier", op=">=", value=1),
    MetricAlert(name="autolabel_audit_error_rate", op=">=", value=0.3),
    MetricAlert(name="annotation_forecast_clear_h", op=">=", value=48),
    MetricAlert(name="annotation_backlog_age_s", op=">=", value=3 * 86400),
    MetricAlert(name="enrichment_embedding_failure_rate", op=">=", value=0.05),
    MetricAlert(name="enrichment_model_errors", op=">=", value=5),
    MetricAlert(name="enrichment_autolabel_confidence_mean", op="<", value=0.3),
    # One issue on half a run's records; grayscale and odd sizes describe a
    # dataset (scanned digits are all grayscale), they do not spoil it.
    MetricAlert(name="enrichment_issue_rate", op=">=", value=0.5,
                skip={"issue": ["grayscale", "odd_size", "odd_aspect_ratio"]}),
)


class AgentSettings(BaseModel):
    """Thresholds of the monitor and the gate, and the validation loop."""

    quarantine_ratio_alert: float = Field(default=0.3, ge=0, le=1, description="A run quarantining more opens an incident.")
    duplicate_ratio_alert: float = Field(default=0.5, ge=0, le=1, description="A run with more duplicates opens one.")
    join_window_s: float = Field(default=600, ge=0, description="Symptoms within this window join the open incident.")
    min_confidence: float = Field(default=0.55, ge=0, le=1, description="Below this an auto-fix needs approval.")
    min_success_rate: float = Field(default=0.5, ge=0, le=1, description="Playbooks failing more on similar incidents need approval.")
    max_playbooks: int = Field(default=2, ge=1, le=5, description="Candidate playbooks tried before escalating.")
    metric_alerts: list[MetricAlert] = Field(
        default_factory=lambda: list(DEFAULT_METRIC_ALERTS),
        description="Reported metrics that open an incident when they cross their threshold.",
    )
    validate_poll_s: float = Field(default=1.0, gt=0)
    validate_timeout_s: float = Field(default=30.0, gt=0, description="Upper bound on any playbook's validation window.")


class Clock(Protocol):
    def now(self) -> datetime: ...

    def t(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass
class WallClock:
    start: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return datetime.now(UTC)

    def t(self) -> float:
        return (self.now() - self.start).total_seconds()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class SimClock:
    """Simulated time: sleeping advances it instantly (replay and evals)."""

    start: datetime
    offset: float = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.offset)

    def t(self) -> float:
        return self.offset

    def sleep(self, seconds: float) -> None:
        self.offset += max(0.0, seconds)


@dataclass
class AgentContext:
    tools: ToolBox
    playbooks: PlaybookCatalog
    offline: DiagnosisEngine
    store: IncidentStore
    clock: Clock
    settings: AgentSettings = field(default_factory=AgentSettings)
    llm: DiagnosisEngine | None = None
    memory: IncidentMemory | None = None
    memory_source: str = "live"
    fault: str | None = None
