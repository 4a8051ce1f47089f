"""End-to-end near-duplicate quality: our pHash + NearDupIndex at radius 6.

Recall on re-compressed (JPEG quality 50-90) and resized (0.5-1.5x) copies,
and false positives among distinct images, measured on ~200 generated images
straight from the generator (no distinctness filtering, so a hash that
confused distinct images would show here).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipelines.ingestion import NearDupIndex, distinct_images, phash_bytes, phash_image

N_IMAGES = 200
RADIUS = 6


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def corpus() -> tuple[NearDupIndex, list[int], list[tuple[str, int]]]:
    rng = np.random.default_rng(2024)
    images = distinct_images(N_IMAGES, seed=99, min_distance=0)
    index = NearDupIndex()
    hashes = []
    variants: list[tuple[str, int]] = []  # (original key, variant hash)
    for i, img in enumerate(images):
        # Lossless copies hash straight from memory: PNG round trips are
        # identity (test_phash checks it) and deflating noise is slow.
        h = phash_image(img)
        hashes.append(h)
        index.add(f"img{i}", h)
        quality = int(rng.integers(50, 91))
        variants.append((f"img{i}", phash_bytes(_jpeg(img, quality))))
        side = int(round(img.width * rng.uniform(0.5, 1.5)))
        resized = img.resize((side, side), Image.Resampling.BILINEAR)
        variants.append((f"img{i}", phash_image(resized)))
    return index, hashes, variants


def test_recall_on_recompressed_and_resized_copies(
    corpus: tuple[NearDupIndex, list[int], list[tuple[str, int]]],
) -> None:
    index, _, variants = corpus
    found = sum(any(key == orig for key, _ in index.query(h, RADIUS)) for orig, h in variants)
    recall = found / len(variants)
    assert recall >= 0.95, f"recall {recall:.3f}"


def test_copies_match_their_own_original_first(
    corpus: tuple[NearDupIndex, list[int], list[tuple[str, int]]],
) -> None:
    index, _, variants = corpus
    wrong = sum(
        1 for orig, h in variants if (hit := index.nearest(h, RADIUS)) is not None and hit[0] != orig
    )
    assert wrong / len(variants) <= 0.01


def test_false_positive_rate_among_distinct_images(
    corpus: tuple[NearDupIndex, list[int], list[tuple[str, int]]],
) -> None:
    index, hashes, _ = corpus
    confused = sum(len(index.query(h, RADIUS)) > 1 for h in hashes)  # itself + another
    assert confused / len(hashes) <= 0.01
    pairs = sum(len(index.query(h, RADIUS)) - 1 for h in hashes) // 2
    assert pairs / (len(hashes) * (len(hashes) - 1) / 2) <= 0.01
