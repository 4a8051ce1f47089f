"""The replay runner: every case in a fresh throwaway world, driven through the
same graph as production with the tools' replay backend.

Per case: a SQLite metadata DB in a temporary folder, real guardrails and
incident store, a :class:`ToolBox` over a :class:`ReplayBackend`, its own
copy of incident memory (when on), and a simulated clock starting at the
case's ``started_at``. Shared by every case, and read-only for them: the
shipped playbooks, the offline diagnosis engine (and the LLM one when
asked), and the graph, compiled once with an in-memory checkpointer whose
threads leave with their case. Monitor passes step through the case clock (see
:class:`RunOptions`); incidents that stop at an approval or escalation
interrupt stay there (nobody approves in an eval).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from agents import (
    AgentContext,
    AgentSettings,
    DiagnosisEngine,
    IncidentStore,
    OfflineDiagnosisEngine,
    SimClock,
    build_graph,
    config_models,
    new_incident_id,
)
from app.db import init_db, make_engine
from app.taxonomy import Pipeline
from evals._case import Case
from evals._memory import EvalMemory
from evals._score import CaseResult, IncidentView, score_case
from guardrails import Guardrails, load_policy
from pipelines.runtime import PipelineConfig, bounds_of
from playbooks import PlaybookCatalog
from tools import ReplayBackend, ToolBox

__all__ = ["RunOptions", "ReplayHarness", "CaseWorld"]


@dataclass(frozen=True)
class RunOptions:
    """How a replay runs.

    ``poll_s`` sets when the monitor looks: ``None`` (default) once when the
    case's recorded window closes (after its last signal), so the incident's
    evidence is everything the case shows, as a monitor polling less often
    than the case lasts would see it; ``0`` at each distinct signal time;
    a number every that many seconds of case time. Each of those passes runs
    ``settle_s`` after its time, so that what the agents do comes after the
    signals they reacted to. After them come ``followup_passes`` more,
    ``followup_every_s`` apart, which see what the world did after the
    agents acted.
    """

    memory: bool = True
    llm: str = "none"
    repeat: int = 1
    poll_s: float | None = None
    settle_s: float = 1.0
    followup_passes: int = 3
    followup_every_s: float = 60.0
    settings: AgentSettings = field(default_factory=AgentSettings)

    def describe(self) -> dict[str, Any]:
        return {"memory": "on" if self.memory else "off", "llm": self.llm, "repeat": self.repeat,
                "poll_s": self.poll_s, "followup_passes": self.followup_passes}


@dataclass
class CaseWorld:
    """One case's throwaway world, kept for scoring and reports."""

    case: Case
    clock: SimClock
    backend: ReplayBackend
    tools: ToolBox
    store: IncidentStore
    guardrails: Guardrails
    graph: Any
    context: AgentContext
    incidents: list[str] = field(default_factory=list)

    def view(self, incident_id: str) -> IncidentView:
        snap = self.graph.get_state({"configurable": {"thread_id": incident_id}})
        interrupts = [dict(i.value) for i in (snap.interrupts or ()) if isinstance(i.value, dict)]
        return IncidentView(
            id=incident_id,
            state=dict(snap.values or {}),
            row=self.store.get(incident_id),
            interrupt=interrupts[0].get("kind") if interrupts else None,
        )

    def bounds_refusals(self) -> list[str]:
        entries = self.guardrails.audit.entries(limit=100_000)
        return [
            f"{e.action}{' (rollback)' if (e.idempotency_key or '').endswith(':undo') else ''} refused: {e.reason}"
            for e in entries if e.verdict == "refused" and e.reason.startswith("bounds:")
        ]


def _schedule(case: Case, options: RunOptions) -> list[float]:
    times = sorted({s.t for s in case.signals}) or [0.0]
    if options.poll_s is None:
        return [times[-1]]
    if options.poll_s == 0:
        return times
    out, t = [], options.poll_s
    while True:
        out.append(t)
        if t >= times[-1]:
            return out
        t += options.poll_s


class ReplayHarness:
    """Runs cases one by one. Loads the playbooks, policy and (with memory on)
    the embedded seed incidents once; every case gets a world of its own."""

    def __init__(self, options: RunOptions | None = None, *, llm: DiagnosisEngine | None = None,
                 memory: EvalMemory | None = None, workdir: Path | None = None) -> None:
        self.options = options or RunOptions()
        self.playbooks = PlaybookCatalog.load()
        self.policy = load_policy()
        models = config_models()
        self.bounds = {p.value: bounds_of(models.get(p.value, PipelineConfig)) for p in Pipeline}
        self.offline = OfflineDiagnosisEngine()
        self.graph = build_graph(InMemorySaver(), max_playbooks=self.options.settings.max_playbooks)
        self.llm = llm if llm is not None else _llm_engine(self.options.llm)
        self._stack = ExitStack()
        if self.options.memory or memory is not None:
            self._stack.callback(_one_torch_thread())
        self.memory = memory if memory is not None else (EvalMemory() if self.options.memory else None)
        self.workdir = workdir or Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="dataops-eval-")))

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> ReplayHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running -----------------------------------------------------------
    def run(self, cases: Sequence[Case], *, on_case: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
        """Every case, ``options.repeat`` times, in order."""
        results: list[CaseResult] = []
        for rep in range(self.options.repeat):
            for case in cases:
                result = self.run_case(case, repetition=rep)
                results.append(result)
                if on_case is not None:
                    on_case(result)
        return results

    def run_case(self, case: Case, *, repetition: int = 0) -> CaseResult:
        started = time.perf_counter()
        try:
            with self.world(case) as world:
                self.drive(world)
                result = score_case(case, world, repetition=repetition)
        except Exception as exc:  # noqa: BLE001 - one broken case is a scored failure, never the end of the run
            result = score_case(case, None, repetition=repetition, error=f"{type(exc).__name__}: {exc}")
        result.wall_s = round(time.perf_counter() - started, 3)
        return result

    @contextmanager
    def world(self, case: Case) -> Iterator[CaseWorld]:
        """A fresh world for ``case``, torn down afterwards."""
        with tempfile.TemporaryDirectory(dir=self.workdir, prefix="case-") as tmp, ExitStack() as stack:
            engine = make_engine(f"sqlite:///{Path(tmp) / 'metadata.db'}")
            stack.callback(engine.dispose)
            init_db(engine)
            clock = SimClock(start=case.started_at)
            memory = stack.enter_context(self.memory.for_case(case.started_at)) if self.memory is not None else None
            backend = ReplayBackend(case, clock, memory=memory, config_model=config_models().get(case.pipeline.value))
            guardrails = Guardrails(engine, self.policy, self.bounds, clock=clock.now)
            tools = ToolBox(backend, guardrails, actor="agent")
            store = IncidentStore(engine, clock=clock.now)
            context = AgentContext(
                tools=tools, playbooks=self.playbooks, offline=self.offline, store=store, clock=clock,
                settings=self.options.settings, llm=self.llm, memory=memory, memory_source="eval",
            )
            world = CaseWorld(case, clock, backend, tools, store, guardrails, self.graph, context)
            stack.callback(self._forget, world)
            yield world

    def _forget(self, world: CaseWorld) -> None:
        """The graph is shared by every case; a case's threads leave with it."""
        for thread in world.incidents:
            self.graph.checkpointer.delete_thread(thread)

    def drive(self, world: CaseWorld) -> None:
        """Monitor passes over the case clock, then the follow-up passes."""
        opts = self.options
        cursor = 0.0
        passes = _schedule(world.case, opts)
        extra = 0
        while passes or extra < opts.followup_passes:
            if passes:
                when = passes.pop(0) + opts.settle_s
            else:
                when = world.clock.t() + opts.followup_every_s
                extra += 1
            if world.clock.t() < when:
                world.clock.sleep(when - world.clock.t())
            cursor = self._pass(world, cursor)

    def _pass(self, world: CaseWorld, cursor: float) -> float:
        thread = new_incident_id(world.clock.now())
        state = {"pipeline": world.case.pipeline.value, "dataset": world.backend.dataset, "cursor_t": cursor,
                 "incident_id": thread}
        config = {"configurable": {"thread_id": thread}}
        out = world.graph.invoke(state, config, context=world.context)
        if out.get("quiet"):
            world.graph.checkpointer.delete_thread(thread)
        else:
            world.incidents.append(thread)
        return float(out.get("cursor_t") or cursor)


def _one_torch_thread() -> Callable[[], None]:
    """Embed with one torch thread while the harness runs; returns the undo.
    Cases embed one short text at a time, which more threads do not speed
    up, and on a busy machine torch's thread pool makes each call several
    times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    return lambda: torch.set_num_threads(before)


def _llm_engine(spec: str) -> DiagnosisEngine | None:
    if spec.strip().lower() in ("", "none"):
        return None
    from agents.llm import LLMDiagnosisEngine, make_chat_backend
    from app.settings import load_settings

    chat = make_chat_backend(load_settings(llm=spec))
    return LLMDiagnosisEngine(chat) if chat is not None else None
