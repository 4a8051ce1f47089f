"""The control plane: a LangGraph state machine of monitor, diagnose, decide,
act, validate, learn and escalate agents over one incident state.

Names load on first use: the metadata DB registers ``agents._store``'s
tables at every start-up, which must not import LangGraph with them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents._diagnosis import Diagnosis, DiagnosisEngine, DiagnosisRequest
    from agents._graph import build_graph, open_checkpointer
    from agents._offline import OfflineDiagnosisEngine, incident_query
    from agents._state import AgentContext, AgentSettings, Clock, IncidentState, MetricAlert, SimClock, WallClock
    from agents._store import IncidentRow, IncidentStore, new_incident_id
    from agents._supervisor import Supervisor, config_models, registered_jobs, supervisor

_WHERE = {
    "_diagnosis": ("Diagnosis", "DiagnosisEngine", "DiagnosisRequest"),
    "_graph": ("build_graph", "open_checkpointer"),
    "_offline": ("OfflineDiagnosisEngine", "incident_query"),
    "_state": ("AgentContext", "AgentSettings", "Clock", "IncidentState", "MetricAlert", "SimClock", "WallClock"),
    "_store": ("IncidentRow", "IncidentStore", "new_incident_id"),
    "_supervisor": ("Supervisor", "config_models", "registered_jobs", "supervisor"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(f"agents.{module}"), name)

__all__ = [
    "AgentContext",
    "AgentSettings",
    "Clock",
    "Diagnosis",
    "DiagnosisEngine",
    "DiagnosisRequest",
    "IncidentRow",
    "IncidentState",
    "IncidentStore",
    "MetricAlert",
    "OfflineDiagnosisEngine",
    "SimClock",
    "Supervisor",
    "WallClock",
    "build_graph",
    "config_models",
    "incident_query",
    "new_incident_id",
    "open_checkpointer",
    "registered_jobs",
    "supervisor",
]
