"""The agent loop over the real enrichment pipeline: a broken embedding model
version, an embed stage out of memory and a spike of blurry images are
detected, diagnosed, decided by the policy and fixed; a re-enrichment over
the approval limit waits for a human."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from agents import AgentSettings, IncidentRow, Supervisor, supervisor
from evals.faults import Fault, make_fault
from guardrails import AuditEntry
from pipelines.enrichment import EnrichmentConfig, enrichment_job, versions
from pipelines.ingestion import ingestion_job, make_sample_dataset
from pipelines.runtime import Job, Runtime

pytestmark = pytest.mark.slow  # real ingestion and enrichment runs (MiniLM for the texts)

DATASET = "photos"


@dataclass
class EnrichmentWorld:
    rt: Runtime
    ingest: Job
    job: Job
    sup: Supervisor
    landing: Path
    batches: int = 0

    def land(self) -> None:
        make_sample_dataset(self.landing / f"b{self.batches:02d}", n_images=12, n_audio=0, n_text=2,
                            seed=300 + self.batches)
        self.batches += 1
        self.ingest.run(self.rt)

    def strike(self, name: str, **params: Any) -> tuple[Fault, list[IncidentRow]]:
        fault = make_fault(name, **params)
        self.land()
        fault.apply(self.job, self.rt)
        self.job.run(self.rt)
        return fault, self.sup.cycle()

    def audit(self, incident_id: str) -> list[AuditEntry]:
        with Session(self.rt.engine) as s:
            return list(s.exec(select(AuditEntry).where(AuditEntry.incident_id == incident_id)))

    def config(self) -> EnrichmentConfig:
        return self.rt.configs.current("enrichment", DATASET, EnrichmentConfig)[1]

    def metrics(self) -> dict[str, float]:
        row = self.rt.events.list(pipeline="enrichment", types=["metrics"], limit=1)[-1]
        return {
            v["name"] + "".join(f"[{x}]" for x in (v.get("labels") or {}).values()): float(v["value"])
            for v in row.data["values"]
        }


@pytest.fixture
def world(runtime: Runtime, tmp_path: Path) -> Iterator[EnrichmentWorld]:
    landing = tmp_path / "landing"
    ingest = ingestion_job(DATASET, str(landing))
    job = enrichment_job(DATASET)
    settings = AgentSettings(validate_poll_s=0.05, validate_timeout_s=5)
    with supervisor(runtime, [job], settings=settings, llm=None) as sup:
        runtime.configs.set("enrichment", DATASET, EnrichmentConfig, {"retry_backoff_s": 0.0}, actor="test", reason="fast")
        w = EnrichmentWorld(runtime, ingest, job, sup, landing)
        w.land()
        job.run(runtime)
        assert sup.cycle() == [], "a clean enrichment run opens no incident"
        yield w


def _one(world: EnrichmentWorld, opened: list[IncidentRow]) -> IncidentRow:
    assert len(opened) == 1, [o.id for o in opened]
    return world.sup.store.get(opened[0].id)


def test_a_broken_embedding_version_falls_back(world: EnrichmentWorld) -> None:
    assert world.config().embedding_model_version == 2
    fault, opened = world.strike("embedding_model_failure")
    row = _one(world, opened)
    assert (row.root_cause, row.decision, row.playbook, row.status) == (
        "model_degradation", "auto_fix_notify", "fallback_model", "resolved"
    ), row.notes
    assert world.config().embedding_model_version == 1
    fell = [a for a in world.audit(row.id) if a.action == "fallback_model" and a.verdict == "executed"]
    assert fell and fell[0].args["kind"] == "embedding" and fell[0].result["previous_version"] == 2
    assert fault.effects["raised"] > 0
    # The run after the fallback embedded everything with version 1, as a new version.
    assert world.metrics()["enrichment_embedding_failure_rate"] == 0.0
    assert [v.embedding_model_version for v in versions(world.rt, DATASET)][-1] == 1


def test_out_of_memory_in_embedding_reduces_the_batch(world: EnrichmentWorld) -> None:
    fault, opened = world.strike("embedding_oom", limit=24)
    row = _one(world, opened)
    assert (row.root_cause, row.decision, row.playbook, row.status) == (
        "resource_exhaustion", "auto_fix_notify", "reduce_batch_size", "resolved"
    ), row.notes
    assert world.config().batch_size <= 24
    assert fault.effects["raised"] > 0
    status = world.sup.tools.observe("run_status", {"pipeline": "enrichment", "dataset": DATASET}).data
    assert status["status"] == "succeeded"


def test_a_blurry_spike_pauses_enrichment(world: EnrichmentWorld) -> None:
    fault, opened = world.strike("enrichment_issue_spike")
    row = _one(world, opened)
    assert (row.root_cause, row.decision, row.playbook, row.status) == (
        "data_quality", "auto_fix_notify", "pause_and_quarantine", "resolved"
    ), row.notes
    assert fault.effects["blurred"] > 0
    assert world.rt.control.is_paused("enrichment", DATASET)
    held = [a for a in world.audit(row.id) if a.action == "quarantine_batch" and a.verdict == "executed"]
    assert held and held[0].result["held_back"] > 0
    assert "blurry" in (row.summary or "")


def test_a_large_reenrichment_needs_a_human(world: EnrichmentWorld) -> None:
    world.rt.configs.set("enrichment", DATASET, EnrichmentConfig, {"reenrich_approval_above": 5}, actor="test",
                         reason="small limit")
    tools = world.sup.tools
    scope = {"pipeline": "enrichment", "dataset": DATASET}
    size = tools.observe("reenrich_scope", scope)
    assert size.is_ok and size.data["samples"] > 5 and size.data["over_approval_limit"] is True
    why = tools.approval_needed("reenrich", scope)
    assert why is not None and f"{size.data['samples']:,} samples" in why
    before = len(versions(world.rt, DATASET))
    asked = tools.act("reenrich", scope, incident_id="i-9", idempotency_key="i-9:1:reenrich:0:0")
    assert asked.result.status == "approval_required" and len(versions(world.rt, DATASET)) == before
    refused = [a for a in world.audit("i-9") if a.verdict == "refused"]
    assert refused and refused[0].reason.startswith("approval: reenrich would touch")
    ran = tools.act("reenrich", scope, incident_id="i-9", idempotency_key="i-9:2:reenrich:0:0", approved=True)
    assert ran.result.is_ok, ran.result.error
    assert len(versions(world.rt, DATASET)) == before + 1 and ran.result.data["processed"] == size.data["samples"]
