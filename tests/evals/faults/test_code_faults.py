"""Faults of the pipeline's own stages, injected into a real ingestion job."""

from __future__ import annotations

from evals.faults import DEFECT_MESSAGE, OOM_MESSAGE, MemoryBlowup, make_fault
from tests.evals.faults._world import World, failed_stage


def test_memory_blowup_fails_runs_until_the_batch_size_comes_down(world: World) -> None:
    assert world.config().batch_size == 64
    fault = make_fault("memory_blowup")  # limit 32
    fault.apply(world.job, world.rt)
    assert fault.effects["batch_size"] == 64 and fault.effects["batch_size_before"] == 64

    first = world.run()
    event = failed_stage(world, first)
    assert event.stage == MemoryBlowup.stage == "collate"
    assert event.data["error"] == f"MemoryError: {OOM_MESSAGE}"
    assert event.data["error_type"] == "MemoryError"
    assert event.data["batch_size"] == 64
    assert [e.stage for e in world.events(first.run_id, "stage_retry")] == ["collate", "collate"]
    assert first.read == 0

    world.set_config(batch_size=32)  # what reduce_batch_size does
    second = world.run()
    assert second.status == "succeeded", second
    assert second.read == world.info.n_files and second.accepted == world.info.n_accepted
    assert fault.active  # the limit is still there; the batches fit under it
    world.assert_nothing_lost()


def test_memory_blowup_with_a_careless_deploy(world: World) -> None:
    fault = make_fault("memory_blowup", limit=100, deploy_batch_size=128)
    fault.apply(world.job, world.rt)
    assert world.config().batch_size == 128
    (changed,) = world.rt.events.list(types=["config_changed"], limit=1)
    assert changed.data["actor"] == "deploy-bot" and changed.data["changed"] == {"batch_size": [64, 128]}
    assert fault.effects["batch_size"] == 128 and fault.effects["deploy_version"] == changed.data["version"]

    first = world.run()
    assert failed_stage(world, first).data["batch_size"] == 128

    fault.heal()  # reverts the deploy and the stage stops failing
    assert world.config().batch_size == 64
    assert world.job.spec_wrappers == []
    second = world.run()
    assert second.status == "succeeded" and second.read == world.info.n_files
    world.assert_nothing_lost()


def test_stage_exception_fails_the_run_on_image_records(world: World) -> None:
    fault = make_fault("stage_exception")
    fault.apply(world.job, world.rt)

    first = world.run()
    event = failed_stage(world, first)
    assert event.stage == "exif_orient"
    assert event.data["error"] == f"AttributeError: {DEFECT_MESSAGE}"
    assert event.data["error_type"] == "AttributeError"
    assert first.error is not None and DEFECT_MESSAGE in first.error
    assert first.read == 0
    assert fault.effects["raised"] >= 3  # every attempt hits an image

    fault.heal()  # the fix is deployed
    second = world.run()
    assert second.status == "succeeded", second
    assert second.read == world.info.n_files and second.accepted == world.info.n_accepted
    world.assert_nothing_lost()
