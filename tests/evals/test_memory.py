"""Incident memory in evals: the cutoff (nothing dated after a case's start is
ever recalled) and throwaway per-case copies (what a case learns stays there)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agents import SimClock, incident_query
from app.taxonomy import Decision, Outcome, Pipeline, RootCause
from evals import EvalMemory, ReplayHarness, RunOptions, parse_case
from knowledge_base import IncidentMemory, IncidentRecord, MiniLMEmbedder, get_embedder
from tests.evals._cases import case
from tools import ReplayBackend, ToolCall

CASE = parse_case(case("recovered"))  # starts 2026-03-02 04:10 UTC


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    shared = get_embedder()
    shared.load()
    return shared


def _seed_like(id: str, opened_at: datetime, symptoms: str, root_cause: RootCause, playbook: str) -> IncidentRecord:
    return IncidentRecord(
        id=id, pipeline=Pipeline.INGESTION, opened_at=opened_at, title=f"{root_cause.value} in ingestion",
        symptoms=symptoms, root_cause=root_cause, playbook=playbook, decision=Decision.AUTO_FIX_NOTIFY,
        outcome=Outcome.RESOLVED, source="seed",
    )


PAST = _seed_like(
    "seed-past-oom", datetime(2026, 1, 10, 9, 0, tzinfo=UTC),
    "event stage_failed stage=decode error=MemoryError: Unable to allocate 2.4 GiB for an array\n"
    "log error: decode worker killed by the OOM killer",
    RootCause.RESOURCE_EXHAUSTION, "reduce_batch_size",
)
# The case's exact twin, but from an hour after it started, and labelled with
# another cause: recalling it would leak the future into the diagnosis.
FUTURE = _seed_like(
    "seed-future-twin", CASE.started_at + timedelta(hours=1),
    incident_query(list(CASE.signals)), RootCause.CONFIG_ERROR, "restore_config",
)


def test_recall_never_returns_an_incident_dated_after_started_at(embedder: MiniLMEmbedder) -> None:
    memory = IncidentMemory.ephemeral(embedder=embedder)
    try:
        memory.record_many([PAST, FUTURE])
        clock = SimClock(start=CASE.started_at, offset=7200)  # the case clock is past the future incident too
        backend = ReplayBackend(CASE, clock, memory=memory)
        res = backend.handle(ToolCall(tool="recall_incidents", args={"query": FUTURE.symptoms, "k": 5}))
        assert res.is_ok and [m["id"] for m in res.data] == ["seed-past-oom"]
        # Without the cutoff the twin would come first.
        assert memory.similar(FUTURE.symptoms, k=1)[0].incident.id == "seed-future-twin"
    finally:
        memory.close()


def test_the_harness_memory_holds_only_the_past_and_the_agents_never_recall_the_future(embedder: MiniLMEmbedder) -> None:
    memory = EvalMemory([PAST, FUTURE], embedder=embedder)
    assert len(memory) == 2
    with memory.for_case(CASE.started_at) as copy:
        assert [r.id for r in copy.all()] == ["seed-past-oom"]
    with ReplayHarness(RunOptions(memory=True), memory=memory) as harness:
        (result,) = harness.run([CASE])
    summary = result.evidence["summary"]
    assert "recalled seed-past-oom" in summary and "seed-future-twin" not in summary
    assert result.actual["root_cause"] == "resource_exhaustion" and result.passed


def test_what_a_case_learns_stays_in_its_own_copy(embedder: MiniLMEmbedder) -> None:
    memory = EvalMemory([PAST], embedder=embedder)
    with ReplayHarness(RunOptions(memory=True), memory=memory) as harness, harness.world(CASE) as world:
        harness.drive(world)
        assert world.context.memory is not None and world.context.memory_source == "eval"
        learned = [r for r in world.context.memory.all() if r.source == "eval"]
        assert len(learned) == 1 and learned[0].root_cause == RootCause.RESOURCE_EXHAUSTION
        assert learned[0].outcome == Outcome.RESOLVED
    later = CASE.started_at + timedelta(days=30)
    with memory.for_case(later) as fresh:
        assert [(r.id, r.source) for r in fresh.all()] == [("seed-past-oom", "seed")]
