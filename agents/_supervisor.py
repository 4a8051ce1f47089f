"""The supervisor: the graph wired to the live world for a set of jobs.
Used by the demo, the daemon and the CLI's approve / reject."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import structlog
from langgraph.types import Command

from agents._graph import build_graph, open_checkpointer
from agents._offline import OfflineDiagnosisEngine
from agents._state import AgentContext, AgentSettings, IncidentState, WallClock
from agents._store import IncidentRow, IncidentStore
from guardrails import Guardrails, load_policy
from pipelines.runtime import Job, PipelineConfig, Runtime, bounds_of
from tools import ToolBox
from tools._live import LiveBackend

__all__ = ["Supervisor", "supervisor", "config_models", "registered_jobs"]

_log = structlog.get_logger("dataops.supervisor")


def config_models() -> dict[str, type[PipelineConfig]]:
    """Each supervised pipeline's config model: its tunables and bounds."""
    from pipelines.annotation import AnnotationConfig
    from pipelines.enrichment import EnrichmentConfig
    from pipelines.ingestion import IngestionConfig

    return {"ingestion": IngestionConfig, "annotation": AnnotationConfig, "enrichment": EnrichmentConfig}


class Supervisor:
    def __init__(
        self,
        rt: Runtime,
        jobs: Sequence[Job],
        checkpointer: Any,
        *,
        memory: Any = None,
        llm: Any = None,
        settings: AgentSettings | None = None,
        actor: str = "agent",
    ) -> None:
        from playbooks import PlaybookCatalog

        self.rt = rt
        self.jobs = {j.key: j for j in jobs}
        self.settings = settings or AgentSettings()
        models = config_models()
        self.clock = WallClock()
        self.guardrails = Guardrails(rt.engine, load_policy(), {p: bounds_of(m) for p, m in models.items()})
        self.backend = LiveBackend(rt, self.jobs, models, memory=memory, start=self.clock.start, clock=self.clock.now)
        self.tools = ToolBox(self.backend, self.guardrails, actor=actor)
        self.store = IncidentStore(rt.engine)
        self.playbooks = PlaybookCatalog.load()
        self.graph = build_graph(checkpointer, max_playbooks=self.settings.max_playbooks)
        self.context = AgentContext(
            tools=self.tools,
            playbooks=self.playbooks,
            offline=OfflineDiagnosisEngine(),
            store=self.store,
            clock=self.clock,
            settings=self.settings,
            llm=llm,
            memory=memory,
        )
        # Each job's monitor cursor between cycles: time, and the event id it
        # reads on from (events stored before the supervisor started are not
        # its business, as with time alone).
        first_id = rt.events.last_id()
        self.cursors: dict[str, dict[str, Any]] = {
            key: {"cursor_t": 0.0, "cursor_event_id": first_id, "recent_event_ids": {}} for key in self.jobs
        }
        for job in jobs:
            self.store.register_job(job.pipeline, job.dataset, job.source_uri)

    def _config(self, thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}}

    def cycle(self) -> list[IncidentRow]:
        """One monitor pass over every job; returns the incidents it opened
        (each already driven as far as it can go without a human)."""
        opened: list[IncidentRow] = []
        for key, job in self.jobs.items():
            from agents._store import new_incident_id

            thread = new_incident_id(self.clock.now())
            cursor = self.cursors[key]
            state: IncidentState = {
                "pipeline": job.pipeline,
                "dataset": job.dataset,
                "cursor_t": cursor["cursor_t"],
                "cursor_event_id": cursor["cursor_event_id"],
                "recent_event_ids": cursor["recent_event_ids"],
                "incident_id": thread,
            }
            out = self.graph.invoke(state, self._config(thread), context=self.context, durability="sync")
            self.cursors[key] = {k: out.get(k, v) for k, v in cursor.items()}
            if not out.get("quiet"):
                opened.append(self.store.get(thread))
            else:
                self._forget(thread)
        return opened

    def _forget(self, thread: str) -> None:
        saver = self.graph.checkpointer
        if saver is not None and hasattr(saver, "delete_thread"):
            saver.delete_thread(thread)

    def resume_in_flight(self) -> list[IncidentRow]:
        """After a crash: drive every incident still marked open from its checkpoint."""
        out = []
        for row in self.store.in_flight():
            _log.info("incident_resumed", incident=row.id)
            self.graph.invoke(None, self._config(row.id), context=self.context, durability="sync")
            out.append(self.store.get(row.id))
        return out

    def answer(self, incident_id: str, *, approved: bool, by: str, reason: str = "") -> IncidentRow:
        """Approve or reject an incident waiting for a human; the graph resumes."""
        row = self.store.get(incident_id)
        if row.status not in ("pending_approval", "escalated"):
            from app.errors import InputError

            raise InputError(f"incident {incident_id} is {row.status}, not waiting for a human")
        self.guardrails.audit.append(
            actor=by, action="approve" if approved else "reject", verdict="executed", pipeline=row.pipeline,
            incident_id=incident_id, reason=reason,
        )
        self.graph.invoke(
            Command(resume={"approved": approved, "by": by, "reason": reason}),
            self._config(incident_id),
            context=self.context,
            durability="sync",  # a crash right after must not repeat what ran
        )
        return self.store.get(incident_id)


def registered_jobs(rt: Runtime) -> list[Job]:
    """The jobs supervisors registered in the metadata DB, rebuilt: ingestion
    from its source, annotation from the dataset it labels (answered by people,
    no simulated pool), enrichment over its dataset."""
    out: list[Job] = []
    for row in IncidentStore(rt.engine).jobs():
        if row.pipeline == "ingestion":
            from pipelines.ingestion import ingestion_job

            out.append(ingestion_job(row.dataset, row.source))
        elif row.pipeline == "annotation" and row.source.startswith("dataset://"):
            from pipelines.annotation import annotation_job

            out.append(annotation_job(row.dataset, row.source.removeprefix("dataset://")))
        elif row.pipeline == "enrichment":
            from pipelines.enrichment import enrichment_job

            out.append(enrichment_job(row.dataset))
    return out


@contextmanager
def supervisor(rt: Runtime, jobs: Sequence[Job] | None = None, **kwargs: Any) -> Iterator[Supervisor]:
    """A supervisor with its checkpointer open; ``jobs`` default to the ones
    registered in the metadata DB."""
    if jobs is None:
        jobs = registered_jobs(rt)
    if "llm" not in kwargs:
        from agents.llm import LLMDiagnosisEngine, make_chat_backend

        chat = make_chat_backend(rt.settings)
        kwargs["llm"] = LLMDiagnosisEngine(chat) if chat is not None else None
    with open_checkpointer(rt.settings) as saver:
        yield Supervisor(rt, jobs, saver, **kwargs)
