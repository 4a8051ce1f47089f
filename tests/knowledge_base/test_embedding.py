"""The bundled MiniLM embedder and its Chroma adapter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.errors import InputError
from knowledge_base import EMBEDDING_DIM, MiniLMEmbedder, MiniLMEmbeddingFunction, get_embedder

REPO = Path(__file__).resolve().parents[2]


def test_embed_returns_normalised_float32_rows(embedder: MiniLMEmbedder) -> None:
    vectors = embedder.embed(["CUDA out of memory", "S3 SlowDown", "kappa dropped to 0.4"])
    assert vectors.shape == (3, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_batches_larger_than_batch_size(embedder: MiniLMEmbedder) -> None:
    texts = [f"worker {i} restarted" for i in range(embedder.batch_size + 7)]
    vectors = embedder.embed(texts)
    assert vectors.shape == (len(texts), EMBEDDING_DIM)
    np.testing.assert_allclose(vectors[3], embedder.embed_one(texts[3]), atol=1e-5)


def test_embed_empty_and_bad_input(embedder: MiniLMEmbedder) -> None:
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)
    with pytest.raises(InputError):
        embedder.embed("a single string")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        embedder.embed(["ok", 3])  # type: ignore[list-item]


def test_similar_meanings_are_closer(embedder: MiniLMEmbedder) -> None:
    oom, gpu_mem, labels = embedder.embed(
        [
            "CUDA out of memory while embedding a batch",
            "GPU ran out of memory during inference",
            "annotators disagree on bounding boxes",
        ]
    )
    assert float(oom @ gpu_mem) > float(oom @ labels) + 0.2


def test_shared_instance_and_device(embedder: MiniLMEmbedder) -> None:
    assert get_embedder() is embedder
    assert embedder.is_loaded
    assert embedder.device in ("cpu", "cuda")
    assert embedder.load_seconds is not None and embedder.load_seconds > 0


def test_chroma_adapter_protocol(embedder: MiniLMEmbedder) -> None:
    ef = MiniLMEmbeddingFunction(embedder)
    out = ef(["pod OOMKilled", "Label Studio 502"])
    assert len(out) == 2 and len(out[0]) == EMBEDDING_DIM
    assert MiniLMEmbeddingFunction.name() == "dataops-minilm-l6-v2"
    assert ef.default_space() == "cosine"
    rebuilt = MiniLMEmbeddingFunction.build_from_config(ef.get_config())
    assert isinstance(rebuilt, MiniLMEmbeddingFunction)
    assert not ef.is_legacy()
    with pytest.raises(ValueError):
        MiniLMEmbeddingFunction.build_from_config({"model": "some-other-model"})


def test_import_loads_nothing_and_leaves_env_alone() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["PYTHONPATH"] = str(REPO)
    code = (
        "import os, sys\n"
        "import knowledge_base\n"
        "assert 'sentence_transformers' not in sys.modules, 'model library imported'\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'HF_HUB_OFFLINE' not in os.environ\n"
        "assert not knowledge_base.get_embedder().is_loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_bad_batch_size() -> None:
    with pytest.raises(InputError):
        MiniLMEmbedder(batch_size=0)
