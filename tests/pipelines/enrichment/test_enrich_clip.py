"""Embedding version 3: CLIP image vectors from a local checkpoint (a tiny,
randomly initialised one saved in the real format), and text search
against them through CLIP's text tower."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.settings import load_settings
from pipelines.enrichment import EnrichmentConfig, VectorStore, enrich, search_text
from pipelines.ingestion import ingest
from pipelines.runtime import Runtime
from tests.pipelines.enrichment.planted import make_planted

pytestmark = pytest.mark.slow  # loads transformers


def _checkpoint(folder: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder.mkdir(parents=True)
    tokens = ["<|startoftext|>", "<|endoftext|>"]
    for letter in "abcdefghijklmnopqrstuvwxyz":
        tokens += [letter, f"{letter}</w>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    processor = CLIPImageProcessor(size={"shortest_edge": 24}, crop_size={"height": 24, "width": 24})
    tower = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": len(tokens), "max_position_embeddings": 32,
                     "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={**tower, "image_size": 24, "patch_size": 8},
        projection_dim=12,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_clip_embeddings_and_text_search_over_images(tmp_path: Path) -> None:
    clip = _checkpoint(tmp_path / "clip")
    planted = make_planted(tmp_path / "all")
    folder = tmp_path / "few"
    folder.mkdir()
    names = ["digit_00.png", "digit_01.png", "digit_02.png", "car.txt"]
    for name in names:
        shutil.copy(planted.folder / name, folder / name)
    rt = Runtime.open(load_settings(home=tmp_path / "ws", clip_model_path=clip))
    try:
        ingest(rt, str(folder), "few")
        rt.configs.set("enrichment", "few", EnrichmentConfig, {"embedding_model_version": 3}, actor="test", reason="clip")
        result = enrich(rt, "few")
        assert result.embedding_model == "clip" and result.embedded == len(names)
        kinds = VectorStore(rt.settings).kinds("few", result.version)
        assert kinds["image"] == "clip" and kinds["image_signature"] == "descriptor-v2" and kinds["text"] == "minilm"
        ids, vectors = VectorStore(rt.settings).read("few", result.version, "image")
        assert vectors.shape == (3, 12)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        hits = search_text(rt, "few", "a digit", k=10)
        assert {h.kind for h in hits} == {"image", "text"} and len(hits) == len(names)
    finally:
        rt.close()
