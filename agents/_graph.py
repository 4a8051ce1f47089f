"""The incident graph: monitor → diagnose → decide → act → validate → learn,
with approval and escalation as interrupts, checkpointed per incident."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from agents._nodes import decide, diagnose, monitor
from agents._remediate import act, approval, escalate, learn, validate
from agents._state import AgentContext, IncidentState
from app.settings import Settings
from app.taxonomy import Decision

__all__ = ["build_graph", "open_checkpointer"]


def _after_monitor(state: IncidentState) -> str:
    return END if state.get("quiet") else "diagnose"


def _after_decide(state: IncidentState) -> str:
    decision = state.get("decision")
    if decision == Decision.NO_ACTION.value:
        return "learn"
    if decision == Decision.NEEDS_APPROVAL.value:
        return "approval"
    if decision == Decision.ESCALATE.value and (
        state.get("playbook") in (None, "escalate_only") or not state.get("act_first", True)
    ):
        return "escalate"
    return "act"


def _after_approval(state: IncidentState) -> str:
    if state.get("status") == "rejected":
        return "learn"
    return "act" if state.get("playbook") else "escalate"


def _after_validate(state: IncidentState, max_playbooks: int) -> str:
    validation = state.get("validation") or {}
    if state.get("needs_human"):
        # Refused by a guardrail a human can lift; once approved and still refused, escalate.
        return "escalate" if state.get("approval") else "approval"
    if validation.get("ok"):
        return "escalate" if state.get("decision") == Decision.ESCALATE.value else "learn"
    remaining = [c for c in state.get("candidates") or [] if c not in (state.get("tried") or [])]
    if len(state.get("tried") or []) < max_playbooks and remaining:
        return "decide"
    return "escalate"


def build_graph(checkpointer: BaseCheckpointSaver | None, *, max_playbooks: int = 2) -> Any:
    g: StateGraph[IncidentState, AgentContext, IncidentState, IncidentState] = StateGraph(
        IncidentState, context_schema=AgentContext
    )
    g.add_node("monitor", monitor)
    g.add_node("diagnose", diagnose)
    g.add_node("decide", decide)
    g.add_node("approval", approval)
    g.add_node("act", act)
    g.add_node("validate", validate)
    g.add_node("escalate", escalate)
    g.add_node("learn", learn)
    g.add_edge(START, "monitor")
    g.add_conditional_edges("monitor", _after_monitor, ["diagnose", END])
    g.add_edge("diagnose", "decide")
    g.add_conditional_edges("decide", _after_decide, ["learn", "approval", "escalate", "act"])
    g.add_conditional_edges("approval", _after_approval, ["learn", "act", "escalate"])
    g.add_edge("act", "validate")
    g.add_conditional_edges(
        "validate", lambda s: _after_validate(s, max_playbooks), ["escalate", "learn", "decide", "approval"]
    )
    g.add_edge("escalate", "learn")
    g.add_edge("learn", END)
    return g.compile(checkpointer=checkpointer)


@contextmanager
def open_checkpointer(settings: Settings) -> Iterator[BaseCheckpointSaver]:
    """LangGraph's Postgres saver when the metadata DB is PostgreSQL, its
    SQLite saver in the workspace otherwise."""
    if settings.is_postgres:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        url = settings.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
            saver = PostgresSaver(conn)  # type: ignore[arg-type]
            saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(settings.home) / "checkpoints.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    lite = sqlite3.connect(str(path), check_same_thread=False)
    try:
        sqlite_saver = SqliteSaver(lite)
        sqlite_saver.setup()
        yield sqlite_saver
    finally:
        lite.close()
