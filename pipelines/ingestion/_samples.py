"""A small, realistic multimodal sample dataset (for demos, tests and benchmarks).

Images are synthetic but photo-like: a colour gradient, a smooth random field,
a handful of translucent shapes, a slight blur and sensor-like noise. Distinct
images are *guaranteed* distinct for dedup: their pHashes (as the ingestion
decode computes them) are at least ``MIN_DISTINCT_DISTANCE`` bits apart, far
beyond the default near-duplicate radius of 6, so the dataset's accounting is
exact. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import io
import json
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from pipelines.runtime._records import Modality

from ._decode import decode_image
from ._nearindex import NearDupIndex
from ._phash import hamming, phash_image

__all__ = [
    "MIN_DISTINCT_DISTANCE",
    "SAMPLE_SCHEMA_YAML",
    "SampleDatasetInfo",
    "synth_image",
    "distinct_images",
    "make_images",
    "make_sample_dataset",
]

# Originals are >= 16 bits apart and each near-duplicate variant is <= 4 bits
# from its original, so two variants of different originals stay >= 8 apart:
# nothing distinct can fall within the default radius of 6.
MIN_DISTINCT_DISTANCE = 16
_MAX_VARIANT_DISTANCE = 4
_IMAGE_LABELS = ("street", "indoor", "nature", "vehicle", "animal", "food")
_AUDIO_LABELS = ("tone", "chord", "chirp")
_TEXT_LABELS = ("review", "log", "caption")
_WORDS = (
    "the model data pipeline camera frame label annotator quality review batch sample "
    "image audio signal noise street light shadow object vehicle person tree window "
    "shows contains captures under over near blurry sharp bright dark quiet loud "
    "morning evening city road field kitchen station platform and with of in a"
).split()

SAMPLE_SCHEMA_YAML = f"""\
name: sample
modalities: [image, audio, text]
metadata:
  extra: allow
  fields:
    label: {{type: str, required: true, enum: [{", ".join(_IMAGE_LABELS + _AUDIO_LABELS + _TEXT_LABELS)}]}}
    source_camera: {{type: str}}
    source_device: {{type: str}}
    language: {{type: str, enum: [en]}}
image: {{min_width: 32, min_height: 32, max_aspect_ratio: 4}}
audio: {{min_seconds: 0.5, max_seconds: 60}}
text: {{min_chars: 20}}
quality: {{reject_below: 0.5}}
"""


@dataclass(frozen=True)
class SampleDatasetInfo:
    """What :func:`make_sample_dataset` wrote and how ingestion must classify it.

    Ingesting ``files`` in sorted order, every file ends in exactly one of
    ``originals`` (accepted), ``exact_duplicates`` / ``near_duplicates``
    (duplicate of the named original) or ``rejected`` (quarantine reason).
    """

    folder: Path
    manifest: Path
    files: tuple[str, ...]
    originals: dict[str, Modality]
    exact_duplicates: dict[str, str]
    near_duplicates: dict[str, str]
    rejected: dict[str, str]
    n_images: int
    n_audio: int
    n_text: int

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def n_accepted(self) -> int:
        return len(self.originals)

    @property
    def n_duplicates(self) -> int:
        return len(self.exact_duplicates) + len(self.near_duplicates)

    @property
    def n_quarantined(self) -> int:
        return len(self.rejected)

    def expected_outcome(self, file: str) -> str:
        """``accepted``, ``duplicate`` or the quarantine reason."""
        if file in self.originals:
            return "accepted"
        if file in self.exact_duplicates or file in self.near_duplicates:
            return "duplicate"
        return self.rejected[file]


def synth_image(rng: np.random.Generator, size: int = 256) -> Image.Image:
    """One photo-like RGB image, ``size`` x ``size``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(1, size - 1)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    gradient = c1 * (1 - t[..., None]) + c2 * t[..., None]
    # A smooth random field gives every image its own low-frequency layout,
    # which is exactly what a perceptual hash looks at.
    k = int(rng.integers(3, 7))
    coarse = rng.normal(0, 1, (k, k, 3))
    coarse = ((coarse - coarse.min()) / (np.ptp(coarse) + 1e-9) * 255).astype(np.uint8)
    field = Image.fromarray(coarse, "RGB").resize((size, size), Image.Resampling.BICUBIC)
    blotches = np.asarray(field, dtype=np.float32) - 128.0
    base = gradient * 0.6 + (gradient.mean() + blotches * rng.uniform(0.6, 1.2)) * 0.4
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB").convert("RGBA")

    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for _ in range(int(rng.integers(3, 8))):
        colour = (*(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(140, 256)))
        x0, y0 = rng.uniform(-0.2, 0.9, 2) * size
        w, h = rng.uniform(0.1, 0.6, 2) * size
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            n_pts = int(rng.integers(3, 6))
            pts = [(float(x0 + rng.uniform(0, w)), float(y0 + rng.uniform(0, h))) for _ in range(n_pts)]
            draw.polygon(pts, fill=colour)
    img = Image.alpha_composite(img, overlay).convert("RGB")
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5))))
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(3, 9), (size, size, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def distinct_images(
    n: int, *, size: int = 256, seed: int = 0, min_distance: int = MIN_DISTINCT_DISTANCE
) -> list[Image.Image]:
    """``n`` synthetic images whose pHashes are pairwise >= ``min_distance`` apart.

    ``min_distance=0`` skips the check (the raw generator, e.g. to measure
    how often the hash confuses distinct images).
    """
    rng = np.random.default_rng(seed)
    index = NearDupIndex()
    images: list[Image.Image] = []
    while len(images) < n:
        img = synth_image(rng, size)
        if min_distance > 0:
            h = phash_image(img)
            if index.nearest(h, min_distance - 1) is not None:
                continue  # too close to an earlier image; draw another
            index.add(str(len(images)), h)
        images.append(img)
    return images


def make_images(
    folder: Path, n: int, size: int = 256, seed: int = 0, *, fmt: Literal["png", "jpeg"] = "png"
) -> list[Path]:
    """Write ``n`` distinct images (``bench_00001.png``...) for benchmarks."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(distinct_images(n, size=size, seed=seed), start=1):
        path = folder / f"bench_{i:05d}.{'png' if fmt == 'png' else 'jpg'}"
        img.save(path, format=fmt.upper(), **({"quality": 90} if fmt == "jpeg" else {}))
        paths.append(path)
    return paths


def _encode(img: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=quality)
    else:
        # Level 1: noisy photos barely compress better at 9, and 9 is ~5x slower.
        img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _ingest_hash(data: bytes) -> int:
    """The hash ingestion will compute for these bytes (same decode path)."""
    h = decode_image(data, with_phash=True).phash
    assert h is not None
    return h


def _wav_bytes(rng: np.random.Generator, seconds: float, rate: int, channels: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(180, 1800)
    signal = np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(2 * np.pi * 2 * f0 * t + rng.uniform(0, 6))
    envelope = np.minimum(1.0, t / 0.05) * np.exp(-t * rng.uniform(0.1, 1.0))
    mono = signal * envelope * rng.uniform(0.25, 0.6) + rng.normal(0, 0.003, t.size)
    frames = np.repeat(mono[:, None], channels, axis=1) if channels > 1 else mono[:, None]
    pcm = (np.clip(frames, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _text_bytes(rng: np.random.Generator, index: int) -> bytes:
    lines = []
    for _ in range(int(rng.integers(3, 25))):
        words = rng.choice(_WORDS, size=int(rng.integers(6, 18)))
        lines.append(" ".join(words).capitalize() + ".")
    # The index makes every text unique even if the words repeat.
    return (f"Record {index}.\n" + "\n".join(lines) + "\n").encode("utf-8")


def make_sample_dataset(
    folder: Path, *, n_images: int = 60, n_audio: int = 8, n_text: int = 12, seed: int = 0
) -> SampleDatasetInfo:
    """Write a small multimodal dataset plus ``manifest.jsonl`` into ``folder``.

    Besides the ``n_images`` / ``n_audio`` / ``n_text`` distinct originals it
    writes exact copies (``*_copy.*``), image near-duplicates (``*_q55.jpg``
    re-compressed, ``*_small.png`` at 200x200, ``*_bright.jpg``), and broken
    files: a truncated JPEG and WAV, Latin-1 text, an empty file, a GIF and
    an 8x8 image. Duplicates sort after their originals.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blobs: dict[str, bytes] = {}
    meta: dict[str, dict[str, object]] = {}
    originals: dict[str, Modality] = {}
    exact: dict[str, str] = {}
    near: dict[str, str] = {}
    rejected: dict[str, str] = {}

    # --- distinct images, checked on the bytes ingestion will see
    index = NearDupIndex()
    images: dict[str, tuple[Image.Image, int]] = {}
    while len(images) < n_images:
        img = synth_image(rng)
        fmt = "PNG" if len(images) % 2 == 0 else "JPEG"
        data = _encode(img, fmt, int(rng.integers(80, 96)))
        h = _ingest_hash(data)
        if index.nearest(h, MIN_DISTINCT_DISTANCE - 1) is not None:
            continue
        name = f"img_{len(images) + 1:04d}.{'png' if fmt == 'PNG' else 'jpg'}"
        index.add(name, h)
        images[name] = (img, h)
        blobs[name] = data
        originals[name] = "image"
        meta[name] = {
            "label": str(rng.choice(_IMAGE_LABELS)),
            "source_camera": f"cam_{int(rng.integers(1, 5)):02d}",
        }

    names = list(images)
    n_exact = min(len(names), max(1, n_images // 12)) if names else 0
    for name in names[:n_exact]:
        copy = name.replace(".", "_copy.")
        blobs[copy], meta[copy], exact[copy] = blobs[name], dict(meta[name]), name

    # Near-duplicates from the next originals; an original whose variant drifts
    # more than _MAX_VARIANT_DISTANCE bits is skipped (rare) to keep the guarantee.
    n_near = min(len(names) - n_exact, max(3, n_images // 10)) if names else 0
    kinds = ("q55", "small", "bright")
    candidates = iter(names[n_exact:])
    for k in range(n_near):
        for name in candidates:
            img, h = images[name]
            variant, fname = _variant(img, kinds[k % 3], name)
            data = variant
            if hamming(_ingest_hash(data), h) <= _MAX_VARIANT_DISTANCE:
                blobs[fname], meta[fname], near[fname] = data, dict(meta[name]), name
                break

    # --- audio and text originals, plus one exact copy each
    for i in range(1, n_audio + 1):
        name = f"audio_{i:04d}.wav"
        rate = int(rng.choice((16000, 22050, 44100)))
        blobs[name] = _wav_bytes(rng, float(rng.uniform(1.0, 3.0)), rate, int(rng.integers(1, 3)))
        meta[name] = {"label": str(rng.choice(_AUDIO_LABELS)), "source_device": f"mic_{i % 3 + 1:02d}"}
        originals[name] = "audio"
    for i in range(1, n_text + 1):
        name = f"text_{i:04d}.txt"
        blobs[name] = _text_bytes(rng, i)
        meta[name] = {"label": str(rng.choice(_TEXT_LABELS)), "language": "en"}
        originals[name] = "text"
    for prefix, count in (("audio", n_audio), ("text", n_text)):
        if count:
            src = f"{prefix}_0001.{'wav' if prefix == 'audio' else 'txt'}"
            copy = src.replace(".", "_copy.")
            blobs[copy], meta[copy], exact[copy] = blobs[src], dict(meta[src]), src

    # --- broken files, one per quarantine reason
    broken_img = _encode(synth_image(rng), "JPEG", 90)
    blobs["broken_truncated.jpg"] = broken_img[: len(broken_img) * 6 // 10]
    wav = _wav_bytes(rng, 1.5, 16000, 1)
    blobs["broken_truncated.wav"] = wav[: 44 + (len(wav) - 44) // 2]
    blobs["broken_latin1.txt"] = "Café crème, déjà vu — naïve façade.\n".encode("latin-1", "replace")
    blobs["empty.txt"] = b""
    gif = io.BytesIO()
    synth_image(rng, 64).convert("P").save(gif, format="GIF")
    blobs["unsupported.gif"] = gif.getvalue()
    blobs["tiny_8x8.png"] = _encode(_far_tiny_image(rng, index), "PNG")
    rejected.update(
        {
            "broken_truncated.jpg": "decode_error",
            "broken_truncated.wav": "decode_error",
            "broken_latin1.txt": "not_utf8",
            "empty.txt": "empty_file",
            "unsupported.gif": "unsupported_format",
            "tiny_8x8.png": "low_quality",
        }
    )
    for name in rejected:
        meta[name] = {"label": "street" if name.endswith((".jpg", ".png", ".gif")) else "log"}

    files = tuple(sorted(blobs))
    for name in files:
        (folder / name).write_bytes(blobs[name])
    manifest = folder / "manifest.jsonl"
    with manifest.open("w", encoding="utf-8") as fh:
        for name in files:
            fh.write(json.dumps({"file": name, **meta[name]}) + "\n")
    return SampleDatasetInfo(
        folder=folder,
        manifest=manifest,
        files=files,
        originals=originals,
        exact_duplicates=exact,
        near_duplicates=near,
        rejected=rejected,
        n_images=n_images,
        n_audio=n_audio,
        n_text=n_text,
    )


def _variant(img: Image.Image, kind: str, name: str) -> tuple[bytes, str]:
    stem = name.rsplit(".", 1)[0]
    if kind == "q55":
        return _encode(img, "JPEG", 55), f"{stem}_q55.jpg"
    if kind == "small":
        return _encode(img.resize((200, 200), Image.Resampling.LANCZOS), "PNG"), f"{stem}_small.png"
    brighter = ImageEnhance.Brightness(img).enhance(1.06)
    return _encode(brighter, "JPEG", 90), f"{stem}_bright.jpg"


def _far_tiny_image(rng: np.random.Generator, index: NearDupIndex) -> Image.Image:
    """An 8x8 image that is not a near-duplicate of any original either."""
    while True:
        tiny = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "RGB")
        if index.nearest(phash_image(tiny), MIN_DISTINCT_DISTANCE - 1) is None:
            return tiny
