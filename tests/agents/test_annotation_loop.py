"""The agent loop over the real annotation pipeline (digits with a simulated
annotator pool): a random annotator, a degraded auto-labeler and a backlog
surge are detected, diagnosed, decided by the policy and fixed or escalated."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from agents import AgentSettings, IncidentRow, Supervisor, supervisor
from evals.faults import Fault, make_fault
from guardrails import AuditEntry
from pipelines.annotation import AnnotationConfig, AnnotationQueue, SimulatedAnnotators, annotation_job, write_digits
from pipelines.ingestion import ingestion_job
from pipelines.runtime import Job, Runtime

pytestmark = pytest.mark.slow  # real ingestion, annotation runs and a retrained torch model

DATASET = "digits-labels"


@dataclass
class AnnotationWorld:
    rt: Runtime
    ingest: Job
    job: Job
    pool: SimulatedAnnotators
    sup: Supervisor
    landing: Path
    offset: int = 0

    def land(self, n: int = 40) -> None:
        """New digits arrive and are ingested (the annotation job's source)."""
        write_digits(self.landing / f"b{self.offset:04d}", n, offset=self.offset)
        self.offset += n
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

    def config(self) -> AnnotationConfig:
        return self.rt.configs.current("annotation", DATASET, AnnotationConfig)[1]

    def metrics(self) -> dict[str, float]:
        """The latest annotation run's reported figures (labelled ones by label value)."""
        row = self.rt.events.list(pipeline="annotation", types=["metrics"], limit=1)[-1]
        return {
            v["name"] + "".join(f"[{x}]" for x in (v.get("labels") or {}).values()): float(v["value"])
            for v in row.data["values"]
        }


@pytest.fixture
def world(runtime: Runtime, tmp_path: Path) -> Iterator[AnnotationWorld]:
    landing = tmp_path / "landing"
    ingest = ingestion_job("digits", str(landing))
    pool = SimulatedAnnotators(["ann-a", "ann-b", "ann-c"], 0.95, capacity_per_run=40, seed=1)
    job = annotation_job(DATASET, "digits", pool=pool, labels=[str(d) for d in range(10)])
    settings = AgentSettings(validate_poll_s=0.05, validate_timeout_s=5)
    with supervisor(runtime, [job], settings=settings, llm=None) as sup:
        # Half of the auto-accepted tasks are audited: enough audits per run to measure the model.
        runtime.configs.set("annotation", DATASET, AnnotationConfig, {"audit_rate": 0.5}, actor="test", reason="audits")
        w = AnnotationWorld(runtime, ingest, job, pool, sup, landing)
        w.land()
        job.run(runtime)
        assert sup.cycle() == [], "a clean annotation run opens no incident"
        yield w


def test_a_random_annotator_is_quarantined(world: AnnotationWorld) -> None:
    fault, opened = world.strike("annotator_random")
    assert len(opened) == 1
    row = world.sup.store.get(opened[0].id)
    assert (row.root_cause, row.decision, row.playbook, row.status) == (
        "annotation_quality", "auto_fix_notify", "quarantine_annotator", "resolved"
    ), row.notes
    assert "vendor-new-01" in (row.summary or "")
    queue = AnnotationQueue(world.rt.engine, DATASET)
    assert queue.is_quarantined("vendor-new-01")
    assert not any(queue.is_quarantined(n) for n in ("ann-a", "ann-b", "ann-c"))
    executed = [a for a in world.audit(row.id) if a.action == "quarantine_annotator" and a.verdict == "executed"]
    assert executed and executed[0].args["annotator"] == "vendor-new-01"
    # The fix held: the run after it flags no outlier and the team agrees again.
    after = world.metrics()
    assert after.get("annotator_outlier[vendor-new-01]") is None
    assert all(v == 0.0 for k, v in after.items() if k.startswith("annotator_outlier"))
    fault.heal()
    world.land()
    world.job.run(world.rt)
    assert world.sup.cycle() == []


def test_a_confidently_wrong_labeler_gets_a_stricter_threshold(world: AnnotationWorld) -> None:
    before = world.config().autolabel_threshold
    fault, opened = world.strike("autolabel_degraded")
    assert len(opened) == 1
    row = world.sup.store.get(opened[0].id)
    assert (row.root_cause, row.decision, row.playbook, row.status) == (
        "model_degradation", "auto_fix_notify", "raise_autolabel_threshold", "resolved"
    ), row.notes
    assert before == 0.95 and world.config().autolabel_threshold == pytest.approx(0.98)
    # The labeler is still wrong at 0.965, but nothing it says is accepted any more.
    world.land()
    world.job.run(world.rt)
    assert world.metrics()["autolabel_accept_rate"] == 0.0
    assert world.sup.cycle() == []
    assert fault.effects["proposals"] > 0


def test_a_backlog_surge_is_escalated_with_its_figures(world: AnnotationWorld) -> None:
    fault, opened = world.strike("annotation_backlog_surge")
    assert len(opened) == 1
    row = world.sup.store.get(opened[0].id)
    assert (row.root_cause, row.decision, row.playbook, row.status) == ("backlog", "escalate", "escalate_only", "escalated")
    assert not [a for a in world.audit(row.id) if a.verdict == "executed" and a.action != "notify"]
    pages = [e.message or "" for e in world.rt.events.list(pipeline="annotation", types=["notification"], limit=20)]
    figures = [re.search(r"annotation backlog (\d+) tasks.*?so clearing it takes ([\d.]+) h at this pace", m) for m in pages]
    found = [f for f in figures if f is not None]
    assert found, pages
    assert int(found[0].group(1)) >= fault.effects["tasks"] and float(found[0].group(2)) >= 48
    fault.heal()
    assert AnnotationQueue(world.rt.engine, DATASET).stats().backlog < 100


def test_quarantine_needs_an_annotator_of_the_dataset_and_release_undoes_it(world: AnnotationWorld) -> None:
    tools = world.sup.tools
    scope = {"pipeline": "annotation", "dataset": DATASET}
    unknown = tools.act("quarantine_annotator", {**scope, "annotator": "someone-else"}, incident_id="i-1",
                        idempotency_key="i-1:1:x:0:0")
    assert unknown.result.status == "error" and "answered no task" in (unknown.result.error or "")
    done = tools.act("quarantine_annotator", {**scope, "annotator": "ann-b"}, incident_id="i-1",
                     idempotency_key="i-1:1:x:1:0")
    assert done.result.is_ok and done.result.data["answers_set_aside"] > 0
    assert AnnotationQueue(world.rt.engine, DATASET).is_quarantined("ann-b")
    assert done.inverse is not None and done.inverse.tool == "release_annotator"
    undo = tools.act(done.inverse.tool, done.inverse.args, incident_id="i-1", idempotency_key="i-1:1:x:1:0:undo",
                     undo=True)
    assert undo.result.is_ok and not AnnotationQueue(world.rt.engine, DATASET).is_quarantined("ann-b")
