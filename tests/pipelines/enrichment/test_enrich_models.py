"""The model registry, the config's bounds, the embedders and the cosine dedup tier."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from app.errors import ConfigError, InputError, NotFoundError
from app.settings import load_settings
from pipelines.enrichment import DescriptorEmbedder, EnrichmentConfig, LogMelEmbedder, ModelRegistry
from pipelines.enrichment._config import check_version_name
from pipelines.enrichment._dedup import DedupIndex
from pipelines.runtime import Runtime, bounds_of


def test_registry_versions_and_fallbacks(tmp_path: Path) -> None:
    plain = ModelRegistry(load_settings(home=tmp_path))
    assert [m.version for m in plain.versions("embedding")] == [1, 2]
    assert [m.name for m in plain.versions("labeler")] == ["names", "described"]
    assert plain.previous("embedding", 2) == 1 and plain.previous("embedding", 1) is None
    assert plain.get("embedding", 2).model_for("image") == "descriptor-v2"
    assert plain.get("embedding", 1).model_for("text") == "minilm"
    with pytest.raises(ConfigError, match="CLIP checkpoint"):
        plain.get("embedding", 3)
    with pytest.raises(NotFoundError, match="no labeler model version 9"):
        plain.get("labeler", 9)
    with pytest.raises(InputError):
        plain.versions("tokenizer")
    clip = ModelRegistry(load_settings(home=tmp_path, clip_model_path=tmp_path / "clip"))
    assert [m.version for m in clip.versions("embedding")] == [1, 2, 3]
    assert clip.previous("embedding", 3) == 2 and clip.latest("embedding") == 3


def test_config_tunables_and_their_bounds() -> None:
    bounds = bounds_of(EnrichmentConfig)
    assert bounds["autolabel_threshold"] == (0.5, 0.999)
    assert bounds["dedup_cosine"] == (0.8, 1.0)
    assert bounds["reenrich_approval_above"] == (0.0, 10_000_000.0)
    assert {"batch_size", "workers", "embedding_model_version", "label_model_version"} <= set(bounds)
    cfg = EnrichmentConfig()
    assert (cfg.autolabel_threshold, cfg.dedup_cosine, cfg.reenrich_approval_above) == (0.90, 0.97, 10_000)


@pytest.mark.parametrize("bad", ["", "v1/x", "-v", "v.", "x" * 40, "v 2"])
def test_version_names_are_checked(bad: str) -> None:
    with pytest.raises(InputError, match="invalid enrichment version"):
        check_version_name(bad)


def _digit(images: np.ndarray, i: int) -> np.ndarray:
    small = Image.fromarray((20 + images[i] * 200 / 16).astype(np.uint8))
    return np.asarray(small.resize((128, 128), Image.Resampling.NEAREST).convert("RGB"))


def _jpeg(a: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=60)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize("with_phash", [True, False])
def test_descriptor_separates_re_encodes_from_distinct_images(with_phash: bool) -> None:
    images = load_digits().images
    originals = [_digit(images, i) for i in range(60)]
    emb = DescriptorEmbedder(with_phash=with_phash)
    v = emb.embed([(a, None) for a in originals])
    assert v.shape == (60, emb.dim) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    np.fill_diagonal(sims, -1)
    reencoded = emb.embed([(_jpeg(a), None) for a in originals[:10]])
    same = (reencoded * v[:10]).sum(axis=1)
    threshold = EnrichmentConfig().dedup_cosine
    assert same.min() >= threshold > sims.max()


def test_log_mel_embedding_knows_a_clip_from_another() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    tone = 0.4 * np.sin(2 * np.pi * 440 * t)
    clips = [(tone, 16000), (tone + rng.normal(0, 0.002, t.size), 16000), (rng.normal(0, 0.2, t.size), 16000)]
    v = LogMelEmbedder().embed(clips)
    assert v.shape == (3, 136)
    assert v[0] @ v[1] > 0.97 > 0.5 > v[0] @ v[2]


def test_cosine_tier_matches_the_best_original_and_never_itself(runtime: Runtime) -> None:
    index = DedupIndex(runtime, "ds")
    index._add("text", ["other/x", "ds/self"], np.eye(3, dtype=np.float32)[:2])
    a = np.array([0.0, 1.0, 0.0], dtype=np.float32)  # identical to the stored "ds/self" only
    b = np.array([0.0, 0.6, 0.8], dtype=np.float32)
    c = np.array([0.0, 0.62, 0.78], dtype=np.float32)
    c /= np.linalg.norm(c)
    matches = index.match_batch("text", ["ds/self", "ds/b", "ds/c"], np.stack([a, b, c]), threshold=0.97)
    assert matches[0] is None  # its own stored vector does not count
    assert matches[1] is None  # nothing that close yet: b becomes an original
    assert matches[2] is not None and matches[2][0] == "ds/b" and matches[2][1] >= 0.97
    later = index.match_batch("text", ["ds/d"], b[None, :], threshold=0.97)
    assert later[0] is not None and later[0][0] == "ds/b"
