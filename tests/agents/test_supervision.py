"""The agent loop over the real ingestion pipeline: each fault class is
detected, diagnosed, decided by the policy, fixed and validated."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from app.taxonomy import Decision
from evals.faults import faults_for, make_fault
from guardrails import AuditEntry
from pipelines.ingestion import IngestionConfig
from pipelines.runtime import RunRow
from tests.agents.conftest import World


def _strike(world: World, name: str, **params: object):  # type: ignore[no-untyped-def]
    fault = make_fault(name, **params)
    world.land()
    if fault.between_runs:
        world.job.run(world.rt)
        fault.apply(world.job, world.rt)
    else:
        fault.apply(world.job, world.rt)
        world.job.run(world.rt)
    return fault, world.sup.cycle()


def _audit(world: World, incident_id: str) -> list[AuditEntry]:
    with Session(world.rt.engine) as s:
        return list(s.exec(select(AuditEntry).where(AuditEntry.incident_id == incident_id)))


def _accounting_holds(world: World) -> None:
    with Session(world.rt.engine) as s:
        for run in s.exec(select(RunRow)):
            assert run.read == run.accepted + run.duplicates + run.quarantined, run.id


@pytest.mark.parametrize("name", list(faults_for("ingestion")))
def test_each_fault_is_detected_diagnosed_decided_fixed(world: World, name: str) -> None:
    fault, opened = _strike(world, name)
    assert len(opened) == 1, f"{name}: expected one incident, got {[o.id for o in opened]}"
    row = world.sup.store.get(opened[0].id)
    assert row.root_cause == fault.expected_root_cause.value
    assert row.playbook == fault.expected_playbook
    policy = world.sup.playbooks.policy(fault.expected_root_cause)
    assert row.decision == policy.decision.value
    executed = [a for a in _audit(world, row.id) if a.verdict == "executed"]
    if policy.decision in (Decision.AUTO_FIX, Decision.AUTO_FIX_NOTIFY):
        assert row.status == "resolved", row.notes
        assert executed, "the fix ran through the tools and was audited"
        assert row.seconds_to_resolve is not None
    else:
        assert row.status == "escalated"
    _accounting_holds(world)


def test_fix_really_fixes(world: World) -> None:
    """After the memory blow-up incident the batch size is reduced within
    bounds and the pipeline's latest run succeeded."""
    _, opened = _strike(world, "memory_blowup")
    _, cfg = world.rt.configs.current("ingestion", "ds", IngestionConfig)
    assert 8 <= cfg.batch_size <= 32
    res = world.sup.tools.observe("run_status", {"pipeline": "ingestion", "dataset": "ds"})
    assert res.data["status"] == "succeeded"


def test_rollback_snapshot_restores_the_table(world: World) -> None:
    fault, opened = _strike(world, "bad_table_write")
    checks = world.sup.tools.observe("get_checks", {"pipeline": "ingestion", "dataset": "ds"}).data
    assert all(c["status"] == "pass" for c in checks), checks
    assert world.rt.offline.current_snapshot_id("ds") != fault.effects.get("snapshot_id")


def test_kill_switch_stops_every_action(world: World) -> None:
    world.sup.guardrails.pause("*", by="test", reason="freeze")
    for name in ("transient_source_errors", "bad_table_write"):
        _, opened = _strike(world, name)
        assert len(opened) == 1
        row = world.sup.store.get(opened[0].id)
        assert row.status == "pending_approval", (name, row.status)
        assert not [a for a in _audit(world, row.id) if a.verdict == "executed"]
        world.rt.control.resume("ingestion", "ds", by="test")


def test_failed_validation_rolls_back_and_escalates(world: World) -> None:
    # The limit is below anything reduce_batch_size can reach: the fix cannot hold.
    _, opened = _strike(world, "memory_blowup", limit=4)
    row = world.sup.store.get(opened[0].id)
    assert row.status == "escalated"
    undo = [a for a in row.actions if a.get("rollback")]
    assert undo and undo[0]["tool"] == "set_config" and undo[0]["status"] == "ok"
    _, cfg = world.rt.configs.current("ingestion", "ds", IngestionConfig)
    assert cfg.batch_size == 64, "the batch size went back to what it was"
    verdicts = [a.verdict for a in _audit(world, row.id) if a.action == "set_config"]
    assert verdicts.count("executed") == 2


def test_approval_resumes_the_graph_and_the_fix_runs_once(world: World) -> None:
    world.sup.guardrails.pause("*", by="test", reason="freeze")
    _, opened = _strike(world, "transient_source_errors")
    incident = opened[0].id
    world.sup.guardrails.resume("*", by="test")
    row = world.sup.answer(incident, approved=True, by="alice")
    assert row.status == "resolved"
    retries = [a for a in _audit(world, incident) if a.action == "retry_stage" and a.verdict == "executed"]
    assert len(retries) == 1
    approvals = [a for a in _audit(world, incident) if a.action == "approve"]
    assert approvals and approvals[0].actor == "alice"


def test_rejection_closes_without_acting(world: World) -> None:
    world.sup.guardrails.pause("*", by="test", reason="freeze")
    _, opened = _strike(world, "memory_blowup")
    row = world.sup.answer(opened[0].id, approved=False, by="bob", reason="not now")
    assert row.status == "rejected"
    assert not [a for a in _audit(world, row.id) if a.verdict == "executed" and a.actor == "agent"]
    assert [a.action for a in _audit(world, row.id) if a.actor == "bob"] == ["reject"]


def test_repeated_symptoms_join_the_open_incident(world: World) -> None:
    _, first = _strike(world, "stage_exception")
    assert world.sup.store.get(first[0].id).status == "escalated"
    world.land()
    world.job.run(world.rt)  # the defect is still there
    assert world.sup.cycle() == []
    row = world.sup.store.get(first[0].id)
    assert sum(1 for s in row.signals if s.get("type") == "stage_failed") >= 2


def test_undo_puts_back_a_value_beyond_the_policy_bounds(world: World) -> None:
    # Someone ran the pipeline at 4096 (the model allows it; the policy caps
    # agent changes at 2048). Undoing the agent's own change must restore it.
    world.rt.configs.set("ingestion", "ds", IngestionConfig, {"batch_size": 4096}, actor="human", reason="bulk load")
    _, opened = _strike(world, "memory_blowup", limit=4)
    row = world.sup.store.get(opened[0].id)
    undo = [a for a in row.actions if a.get("rollback")]
    assert undo and undo[0]["status"] == "ok", undo
    _, cfg = world.rt.configs.current("ingestion", "ds", IngestionConfig)
    assert cfg.batch_size == 4096
    refused = [a for a in _audit(world, row.id) if a.verdict == "refused"]
    assert not refused, [a.reason for a in refused]
