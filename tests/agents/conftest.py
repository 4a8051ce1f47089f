"""A supervised ingestion job on a real workspace, for the agent-loop tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents import AgentSettings, Supervisor, supervisor
from evals.faults import high_res_sample_schema
from pipelines.ingestion import IngestionConfig, ingestion_job, make_sample_dataset
from pipelines.runtime import Job, Runtime


@dataclass
class World:
    rt: Runtime
    job: Job
    sup: Supervisor
    landing: Path
    batches: int = 0

    def land(self) -> None:
        make_sample_dataset(self.landing / f"b{self.batches:02d}", n_images=10, n_audio=1, n_text=2, seed=50 + self.batches)
        self.batches += 1


def make_world(rt: Runtime, tmp_path: Path, *, first_batch: bool = True, **sup_kwargs: object) -> Iterator[World]:
    schema = tmp_path / "schema.yaml"
    schema.write_text(high_res_sample_schema())
    landing = tmp_path / "landing"
    job = ingestion_job("ds", str(landing), schema_path=schema)
    settings = AgentSettings(validate_poll_s=0.05, validate_timeout_s=3)
    with supervisor(rt, [job], settings=settings, llm=sup_kwargs.pop("llm", None), **sup_kwargs) as sup:  # type: ignore[arg-type]
        rt.configs.set("ingestion", "ds", IngestionConfig, {"retry_backoff_s": 0.0}, actor="test", reason="fast")
        world = World(rt, job, sup, landing)
        if first_batch:
            world.land()
            job.run(rt)
            assert sup.cycle() == [], "a clean run opens no incident"
        yield world


@pytest.fixture
def world(runtime: Runtime, tmp_path: Path) -> Iterator[World]:
    yield from make_world(runtime, tmp_path)
