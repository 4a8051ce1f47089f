"""The control plane: a LangGraph state machine of monitor, diagnose, decide,
act, validate, learn and escalate agents over one incident state."""

from agents._diagnosis import Diagnosis, DiagnosisEngine, DiagnosisRequest
from agents._graph import build_graph, open_checkpointer
from agents._offline import OfflineDiagnosisEngine, incident_query
from agents._state import AgentContext, AgentSettings, Clock, IncidentState, MetricAlert, SimClock, WallClock
from agents._store import IncidentRow, IncidentStore, new_incident_id
from agents._supervisor import Supervisor, config_models, registered_jobs, supervisor

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
