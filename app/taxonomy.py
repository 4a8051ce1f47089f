"""The shared vocabulary: root causes, gate decisions and incident statuses.

Eval cases, playbooks, memory and agents all use exactly these names.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RootCause", "Decision", "IncidentStatus", "Outcome", "Pipeline"]


class RootCause(StrEnum):
    TRANSIENT_ERROR = "transient_error"
    RESOURCE_EXHAUSTION = "resource_exhaustion"
    CONFIG_ERROR = "config_error"
    UPSTREAM_OUTAGE = "upstream_outage"
    SCHEMA_CHANGE = "schema_change"
    DATA_QUALITY = "data_quality"
    DUPLICATE_FLOOD = "duplicate_flood"
    DATA_DRIFT = "data_drift"
    MODEL_DEGRADATION = "model_degradation"
    ANNOTATION_QUALITY = "annotation_quality"
    BACKLOG = "backlog"
    DATA_CORRUPTION = "data_corruption"
    PII_EXPOSURE = "pii_exposure"
    CODE_DEFECT = "code_defect"
    NO_FAULT = "no_fault"


class Decision(StrEnum):
    """What the gate decides; ordered from most to least autonomous."""

    AUTO_FIX = "auto_fix"
    AUTO_FIX_NOTIFY = "auto_fix_notify"
    NEEDS_APPROVAL = "needs_approval"
    ESCALATE = "escalate"
    NO_ACTION = "no_action"


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    PENDING_APPROVAL = "pending_approval"
    ESCALATED = "escalated"
    FAILED = "failed"
    REJECTED = "rejected"


class Outcome(StrEnum):
    """How a remediation ended, as memory records it."""

    RESOLVED = "resolved"
    FAILED = "failed"
    ESCALATED = "escalated"
    ROLLED_BACK = "rolled_back"
    NO_ACTION = "no_action"


class Pipeline(StrEnum):
    INGESTION = "ingestion"
    ANNOTATION = "annotation"
    ENRICHMENT = "enrichment"
