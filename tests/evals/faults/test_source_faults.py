"""Faults of the upstream, injected into a real ingestion job."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import Session, select

from app.errors import InputError
from evals.faults import CONNECTION_REFUSED, CONNECTION_RESET, make_fault
from pipelines.ingestion import SAMPLE_SCHEMA_YAML
from pipelines.runtime import QuarantineRow, RecordRow
from tests.evals.faults._world import DATASET, World, failed_stage


def test_transient_source_errors_fail_one_run_then_a_retry_succeeds(world: World) -> None:
    fault = make_fault("transient_source_errors")
    fault.apply(world.job, world.rt)
    assert fault.active and fault.effects["failures"] == 4  # max_stage_retries 2 -> 3 attempts, plus one

    first = world.run()
    event = failed_stage(world, first)
    assert event.stage == "read"
    assert event.data["error"] == CONNECTION_RESET
    assert event.data["error_type"] == "ConnectionResetError"
    assert len(world.events(first.run_id, "stage_retry")) == 2
    assert first.error is not None and CONNECTION_RESET in first.error
    assert first.read == 0

    second = world.run()  # recovers on its own: only one more reset, absorbed by a retry
    assert second.status == "succeeded", second
    assert [e.data["error"] for e in world.events(second.run_id, "stage_retry")] == [CONNECTION_RESET]
    assert second.read == world.info.n_files and second.accepted == world.info.n_accepted
    assert not fault.active and fault.effects["raised"] == 4
    world.assert_nothing_lost()


def test_source_down_until_probes_heal_it(world: World) -> None:
    fault = make_fault("source_down")  # heal_after_probes=2
    fault.apply(world.job, world.rt)
    reason = CONNECTION_REFUSED.format(upstream="s3://raw-uploads")

    first = world.run()
    event = failed_stage(world, first)
    assert event.stage == "read" and event.data["error"] == reason
    assert event.data["error_type"] == "ConnectionRefusedError"
    assert first.read == 0

    assert world.job.probe() == reason
    assert fault.active
    assert world.job.probe() == reason  # the second probe that finds it down ...
    assert not fault.active  # ... is the last one
    assert world.job.probe() is None
    assert fault.effects["probes_down"] == 2 and fault.effects["refused_reads"] == 3

    second = world.run()
    assert second.status == "succeeded" and second.read == world.info.n_files
    world.assert_nothing_lost()


def test_source_down_stays_down_until_healed_by_hand(world: World) -> None:
    fault = make_fault("source_down", heal_after_probes=None, upstream="s3://other-bucket")
    fault.apply(world.job, world.rt)
    for _ in range(5):
        assert world.job.probe() == CONNECTION_REFUSED.format(upstream="s3://other-bucket")
    assert world.run().status == "failed"
    fault.heal()
    assert not fault.active and world.job.source_wrappers == []
    assert world.job.probe() is None
    assert world.run().status == "succeeded"
    world.assert_nothing_lost()


def test_schema_change_quarantines_records_as_schema_violation(world: World) -> None:
    assert "label: {type: str, required: true" in SAMPLE_SCHEMA_YAML
    fault = make_fault("schema_change")
    fault.apply(world.job, world.rt)
    assert world.rt.dataset(DATASET).schema_yaml == SAMPLE_SCHEMA_YAML
    assert fault.effects["schema_registered"] is True

    first = world.run()
    assert first.status == "succeeded"
    reasons = Counter(first.quarantine_reasons)
    assert reasons.most_common(1)[0][0] == "schema_violation"
    assert reasons["schema_violation"] >= first.read // 2
    assert first.accepted == 0
    with Session(world.rt.engine) as s:
        details = s.exec(select(QuarantineRow.detail).where(QuarantineRow.reason == "schema_violation")).all()
    assert details and all(d is not None and "label" in d for d in details)

    fault.heal()
    second = world.run()  # what was quarantined stays there (same bytes, same ledger keys)
    assert second.status == "succeeded"
    assert second.read == 0 and second.skipped == world.info.n_files
    world.assert_nothing_lost()


def test_schema_change_keeps_a_schema_that_requires_the_field(world: World) -> None:
    world.rt.ensure_dataset(DATASET, "ingestion", SAMPLE_SCHEMA_YAML.replace("name: sample", "name: mine"))
    fault = make_fault("schema_change")
    fault.apply(world.job, world.rt)
    assert fault.effects["schema_registered"] is False
    assert "name: mine" in (world.rt.dataset(DATASET).schema_yaml or "")


def test_schema_change_refuses_a_field_the_schema_does_not_require(world: World) -> None:
    world.rt.ensure_dataset(DATASET, "ingestion", SAMPLE_SCHEMA_YAML)
    with pytest.raises(InputError, match="does not require 'language'.*label"):
        make_fault("schema_change", field="language").apply(world.job, world.rt)


def test_corrupt_file_flood_quarantines_most_records_as_decode_errors(world: World) -> None:
    fault = make_fault("corrupt_file_flood")
    fault.apply(world.job, world.rt)

    first = world.run()
    assert first.status == "succeeded"
    corrupted = fault.effects["corrupted"]
    assert corrupted >= 0.6 * world.info.n_files
    reasons = Counter(first.quarantine_reasons)
    assert reasons.most_common(1)[0][0] == "decode_error"
    assert reasons["decode_error"] >= first.read // 2
    assert first.quarantined > first.accepted + first.duplicates

    fault.heal()
    second = world.run()  # the good bytes are new records: they go through now
    assert second.status == "succeeded"
    assert second.read == corrupted and second.skipped == world.info.n_files - corrupted
    assert second.accepted > 0
    assert second.quarantine_reasons.get("decode_error", 0) <= 2  # the sample's own broken files
    world.assert_nothing_lost()


def test_duplicate_flood_replays_everything_as_exact_duplicates(world: World) -> None:
    info = world.info
    clean = world.run()
    assert clean.status == "succeeded" and clean.accepted == info.n_accepted

    fault = make_fault("duplicate_flood")
    fault.apply(world.job, world.rt)
    flood = world.run()
    assert flood.status == "succeeded"
    assert flood.skipped == info.n_files  # the originals: already in the ledger
    assert flood.read == info.n_files  # their replays: new names, same bytes
    assert flood.accepted == 0
    assert flood.duplicates == info.n_accepted + info.n_duplicates
    assert flood.quarantined == info.n_quarantined
    assert flood.duplicates > 2 * (flood.accepted + flood.quarantined)
    with Session(world.rt.engine) as s:
        rows = s.exec(select(RecordRow).where(RecordRow.run_id == flood.run_id)).all()
    assert all(r.source.endswith("#replay-1") for r in rows)
    dup = [r for r in rows if r.outcome == "duplicate"]
    assert sum(1 for r in dup if r.duplicate_of) == len(dup)

    again = world.run()  # every run while it lasts is another replay round
    assert again.duplicates == flood.duplicates and fault.effects["rounds"] == 2

    fault.heal()
    healed = world.run()
    assert healed.status == "succeeded" and healed.read == 0
    world.assert_nothing_lost()
