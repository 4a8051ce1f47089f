"""Our pHash: agreement with imagehash, robustness, conversions."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from app.errors import RecordRejected
from pipelines.ingestion import (
    distinct_images,
    from_hex,
    from_signed64,
    hamming,
    phash_bytes,
    phash_image,
    synth_image,
    to_hex,
    to_signed64,
)
from pipelines.ingestion._phash import draft_for_hash

U64 = st.integers(min_value=0, max_value=2**64 - 1)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _theirs(img: Image.Image) -> int:
    return int(str(imagehash.phash(img)), 16)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return distinct_images(40, seed=11, min_distance=0)


def test_same_image_has_distance_zero(images: list[Image.Image]) -> None:
    for img in images[:10]:
        h = phash_image(img)
        assert phash_image(img.copy()) == h
        assert phash_bytes(_png(img)) == h  # lossless round trip changes nothing
        assert 0 <= h < 2**64


def test_agrees_with_imagehash_bit_for_bit_on_lossless_input(images: list[Image.Image]) -> None:
    distances = [hamming(phash_image(img), _theirs(img)) for img in images]
    # Same construction, so the hex strings should match; allow rare float ties.
    assert np.mean(distances) <= 0.5 and max(distances) <= 4
    same_hex = sum(to_hex(phash_image(img)) == str(imagehash.phash(img)) for img in images)
    assert same_hex >= 0.9 * len(images)


def test_near_duplicate_copies_are_close_for_both_hashes(images: list[Image.Image]) -> None:
    ours, theirs = [], []
    for i, img in enumerate(images):
        copy = img.resize((180 + i, 180 + i), Image.Resampling.BILINEAR)
        copy = Image.open(io.BytesIO(_jpeg(copy, 60 + i % 30)))
        ours.append(hamming(phash_image(img), phash_image(copy)))
        theirs.append(hamming(_theirs(img), _theirs(copy)))
    assert sum(d <= 6 for d in ours) >= 0.95 * len(images)
    assert sum(d <= 6 for d in theirs) >= 0.95 * len(images)
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) <= 6


def test_distinct_images_are_far_apart_and_distances_track_imagehash(
    images: list[Image.Image],
) -> None:
    ours = [phash_image(img) for img in images]
    theirs = [_theirs(img) for img in images]
    pairs = [(i, j) for i in range(len(images)) for j in range(i + 1, len(images))]
    d_ours = np.array([hamming(ours[i], ours[j]) for i, j in pairs])
    d_theirs = np.array([hamming(theirs[i], theirs[j]) for i, j in pairs])
    assert d_ours.min() > 6
    assert 24 <= d_ours.mean() <= 40  # roughly half the bits differ
    assert np.corrcoef(d_ours, d_theirs)[0, 1] > 0.95


def test_mode_does_not_matter_only_luminance(images: list[Image.Image]) -> None:
    img = images[0]
    rgba = img.convert("RGBA")
    rgba.putalpha(128)
    assert phash_image(img.convert("L")) == phash_image(img)
    assert phash_image(rgba) == phash_image(img)
    # A uniform brightness shift moves only the DC term, which is always "above median".
    brighter = Image.fromarray(np.clip(np.asarray(img, dtype=np.int16) + 10, 0, 255).astype(np.uint8))
    assert hamming(phash_image(brighter), phash_image(img)) <= 2


def test_large_jpeg_uses_draft_and_stays_close_to_full_decode() -> None:
    img = synth_image(np.random.default_rng(3), size=1024)
    data = _jpeg(img, 90)
    with Image.open(io.BytesIO(data)) as probe:
        draft_for_hash(probe)
        assert max(probe.size) < 1024  # decoded at a reduced scale
    full = Image.open(io.BytesIO(data))
    full.load()
    assert hamming(phash_bytes(data), phash_image(full)) <= 4


def test_draft_leaves_small_and_png_images_alone() -> None:
    img = synth_image(np.random.default_rng(4), size=200)
    for data in (_jpeg(img, 90), _png(img)):
        with Image.open(io.BytesIO(data)) as opened:
            draft_for_hash(opened)
            assert opened.size == (200, 200)


@pytest.mark.parametrize("data", [b"not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, b""])
def test_phash_bytes_rejects_undecodable_input(data: bytes) -> None:
    with pytest.raises(RecordRejected) as err:
        phash_bytes(data)
    assert err.value.reason == "decode_error"


@given(U64, U64)
def test_hamming_is_popcount_of_xor_in_either_storage_form(a: int, b: int) -> None:
    expected = bin(a ^ b).count("1")
    assert hamming(a, b) == expected == hamming(b, a)
    assert hamming(to_signed64(a), to_signed64(b)) == expected
    assert hamming(a, to_signed64(b)) == expected
    assert hamming(a, a) == 0


@given(U64)
def test_signed_and_hex_round_trips(h: int) -> None:
    s = to_signed64(h)
    assert -(2**63) <= s < 2**63
    assert int(np.int64(s)) == s  # fits a database BIGINT / Iceberg long
    assert from_signed64(s) == h
    text = to_hex(h)
    assert len(text) == 16 and text == text.lower()
    assert from_hex(text) == h
    assert from_hex(text.upper()) == h


def test_conversion_edge_values() -> None:
    assert to_signed64(0) == 0
    assert to_signed64(2**63 - 1) == 2**63 - 1
    assert to_signed64(2**63) == -(2**63)
    assert to_signed64(2**64 - 1) == -1
    assert to_hex(1) == "0000000000000001"
    assert from_signed64(-1) == 2**64 - 1


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (to_signed64, -1),
        (to_signed64, 2**64),
        (to_hex, -5),
        (from_signed64, 2**63),
        (from_hex, "0x123456789abcde"),
        (from_hex, "00000000000000zz"),
        (from_hex, "1_23456789abcdef"),
        (from_hex, "abc"),
    ],
)
def test_conversions_reject_out_of_range_input(call, arg) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        call(arg)


def test_sixteen_bit_images_hash_like_their_eight_bit_versions() -> None:
    """PIL's convert("L") clips 16-bit samples to white; the hash must not."""
    rng = np.random.default_rng(8)
    hashes = []
    for _ in range(3):
        gray8 = np.asarray(synth_image(rng, 128).convert("L"))
        img16 = Image.fromarray(gray8.astype(np.uint16) * 257)
        data = _png(img16)
        assert Image.open(io.BytesIO(data)).mode == "I;16"
        h16 = phash_bytes(data)
        assert hamming(h16, phash_image(Image.fromarray(gray8))) <= 2
        hashes.append(h16)
    assert min(hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]) > 6


def test_short_storage_names_are_the_same_conversions() -> None:
    from pipelines.ingestion import to_signed, to_unsigned

    assert to_signed(2**64 - 1) == -1 == to_signed64(2**64 - 1)
    assert to_unsigned(-1) == 2**64 - 1
