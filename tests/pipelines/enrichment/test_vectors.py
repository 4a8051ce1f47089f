"""Embeddings as Zarr arrays: later runs append to the same version."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import StorageError
from app.settings import Settings
from pipelines.enrichment._vectors import VectorStore


def test_a_second_run_appends_only_new_samples(settings: Settings) -> None:
    store = VectorStore(settings)
    rng = np.random.default_rng(0)
    first = rng.normal(size=(3, 8)).astype(np.float32)
    assert store.append("ds", "v1", "image", "m@1", ["a", "b", "c"], first) == 3
    second = rng.normal(size=(2, 8)).astype(np.float32)
    assert store.append("ds", "v1", "image", "m@1", ["c", "d"], second) == 1
    ids, vectors = store.read("ds", "v1", "image")
    assert ids == ["a", "b", "c", "d"]
    np.testing.assert_allclose(vectors[3], second[1])
    np.testing.assert_allclose(vectors[:3], first)


def test_a_version_keeps_its_model(settings: Settings) -> None:
    store = VectorStore(settings)
    store.append("ds", "v1", "image", "m@1", ["a"], np.ones((1, 4), np.float32))
    with pytest.raises(StorageError, match="m@1"):
        store.append("ds", "v1", "image", "m@2", ["b"], np.ones((1, 4), np.float32))
