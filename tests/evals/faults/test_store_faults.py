"""Faults written to the real stores: a config version, a table snapshot."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, col, select

from evals.faults import high_res_sample_schema, make_fault
from pipelines.runtime import RecordRow
from tests.evals.faults._world import DATASET, World


def test_bad_config_quarantines_as_low_quality_until_restored(world: World) -> None:
    # Under the plain sample schema every record scores 1.0 and no gate can reject it.
    world.rt.ensure_dataset(DATASET, "ingestion", high_res_sample_schema())
    fault = make_fault("bad_config")
    fault.apply(world.job, world.rt)
    assert world.config().quality_reject_below == 0.99
    (changed,) = world.rt.events.list(types=["config_changed"], limit=1)
    assert changed.data["actor"] == "deploy-bot"
    assert changed.data["changed"] == {"quality_reject_below": [0.5, 0.99]}
    assert "tune quality gate" in changed.message
    assert fault.effects["previous_version"] == changed.data["version"] - 1

    first = world.run()
    assert first.status == "succeeded"
    reasons = Counter(first.quarantine_reasons)
    assert reasons.most_common(1)[0][0] == "low_quality"
    assert reasons["low_quality"] >= first.read // 2
    assert first.accepted < world.info.n_accepted // 2

    fault.heal()
    assert world.config().quality_reject_below == 0.5
    history = world.rt.configs.history("ingestion", DATASET)
    assert history[-1].actor == "chaos" and history[-1].values == history[-3].values
    assert not fault.active
    second = world.run()
    assert second.status == "succeeded" and second.read == 0
    world.assert_nothing_lost()


def test_bad_config_barely_shows_on_perfect_scores(world: World) -> None:
    """On the plain sample data the gate at 0.99 only catches what scores under 1.0: a 200 px variant."""
    make_fault("bad_config").apply(world.job, world.rt)
    run = world.run()
    assert run.quarantine_reasons.get("low_quality", 0) == 2  # tiny_8x8.png and one 200 px variant


def test_bad_config_heal_keeps_later_changes(world: World) -> None:
    fault = make_fault("bad_config", value=0.9)
    fault.apply(world.job, world.rt)
    world.set_config(batch_size=16)
    fault.heal()
    cfg = world.config()
    assert cfg.quality_reject_below == 0.5 and cfg.batch_size == 16


def test_bad_table_write_commits_rows_the_ledger_never_saw(world: World) -> None:
    clean = world.run()
    assert clean.status == "succeeded" and clean.snapshot_id is not None

    fault = make_fault("bad_table_write")
    fault.apply(world.job, world.rt)
    bad = fault.effects["snapshot_id"]
    assert fault.effects["previous_snapshot_id"] == clean.snapshot_id
    assert world.rt.offline.current_snapshot_id(DATASET) == bad
    (snap,) = [s for s in world.rt.offline.snapshots(DATASET) if s.snapshot_id == bad]
    assert snap.run_id == fault.effects["run_id"]
    assert str(snap.run_id).startswith("manual-backfill-")
    assert snap.added_rows == 8

    table = world.rt.offline.scan(DATASET)
    with Session(world.rt.engine) as s:
        ledger = set(s.exec(select(RecordRow.sample_id).where(col(RecordRow.sample_id).is_not(None))))
    unknown = set(table.column("sample_id").to_pylist()) - ledger
    assert unknown == set(fault.effects["sample_ids"])
    assert sum(1 for u in table.column("uri").to_pylist() if not u) == 8
    assert sum(1 for q in table.column("quality_score").to_pylist() if q == -1.0) == 8

    fault.heal()  # nothing heals a committed snapshot ...
    assert fault.active and world.rt.offline.current_snapshot_id(DATASET) == bad
    again = world.run()
    assert again.status == "succeeded" and again.read == 0

    world.rt.offline.rollback(DATASET, clean.snapshot_id)  # ... but a rollback
    assert not fault.active
    ids = set(world.rt.offline.scan(DATASET).column("sample_id").to_pylist())
    assert ids and ids <= ledger
    world.assert_nothing_lost()


def test_bad_table_write_on_a_dataset_with_no_table_yet(world: World) -> None:
    fault = make_fault("bad_table_write", rows=3)
    fault.apply(world.job, world.rt)
    assert fault.effects["previous_snapshot_id"] is None
    assert world.rt.offline.scan(DATASET).num_rows == 3
    assert fault.active
