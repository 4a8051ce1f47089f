"""The monitoring sensors feed the agent loop: a failed check on what a run
wrote and a critical drift of its data each open an incident with the
right root cause."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.runtime import Runtime
from tests.agents.conftest import World, make_world


@pytest.fixture
def bare_world(runtime: Runtime, tmp_path: Path) -> Iterator[World]:
    yield from make_world(runtime, tmp_path, first_batch=False)


def _land_text(folder: Path, n: int, camera: str, start: int) -> None:
    folder.mkdir(parents=True)
    with (folder / "manifest.jsonl").open("w") as fh:
        for i in range(start, start + n):
            (folder / f"note_{i:04d}.txt").write_text(f"caption {i}: a photo of item {i * 7919 % 1000}")
            fh.write(json.dumps({"file": f"note_{i:04d}.txt", "label": "caption", "source_camera": camera}) + "\n")


def test_failed_check_opens_a_data_quality_incident(world: World, tmp_path: Path) -> None:
    from pipelines.quality import register_suite

    register_suite(
        world.rt,
        "ds",
        "checks:\n"
        "  - {name: quality_floor, type: range, column: quality_score, min: 0.99, severity: critical}\n",
    )
    world.land()
    world.job.run(world.rt)
    (opened,) = world.sup.cycle()
    row = world.sup.store.get(opened.id)
    assert any(s.get("kind") == "check" and s.get("name") == "quality_floor" for s in row.signals)
    assert row.root_cause == "data_quality"
    assert row.decision == "auto_fix_notify" and row.playbook == "pause_and_quarantine"


def test_critical_drift_opens_a_data_drift_incident(bare_world: World) -> None:
    world = bare_world
    _land_text(world.landing / "cams-a", 250, "cam-a", 0)
    world.job.run(world.rt)
    assert world.sup.cycle() == []
    _land_text(world.landing / "cams-z", 250, "cam-z", 1000)
    world.job.run(world.rt)
    (opened,) = world.sup.cycle()
    row = world.sup.store.get(opened.id)
    assert any("source_camera" in json.dumps(s) for s in row.signals)
    assert row.root_cause == "data_drift"
    assert row.decision == "escalate" and row.status == "escalated"
