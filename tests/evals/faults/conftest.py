"""The ``world`` fixture: a fresh workspace, sample dataset and ingestion job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import load_settings
from pipelines.ingestion import ingestion_job, make_sample_dataset
from pipelines.runtime import Runtime
from tests.evals.faults._world import DATASET, World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    rt = Runtime.open(load_settings(home=tmp_path / "ws"))
    info = make_sample_dataset(tmp_path / "in", n_images=20, n_audio=2, n_text=3)
    w = World(rt, ingestion_job(DATASET, str(info.folder)), info)
    w.set_config(retry_backoff_s=0.0)
    yield w
    rt.close()
