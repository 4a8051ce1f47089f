"""A small dataset with planted defects, duplicates and neighbours, for the
enrichment tests: sklearn's handwritten digits upscaled to 160 px (nearest: sharp blocks), a few
short texts and two audio clips."""

from __future__ import annotations

import io
import json
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageFilter
from sklearn.datasets import load_digits

SIDE = 160
N_DIGITS = 40
N_LABELLED = 30
# The digit whose shifted copy is planted as its nearest (non-duplicate) neighbour.
NEIGHBOUR_OF = 2
# The digit whose 1-pixel shift (pHash 2 bits away) is planted as a near-duplicate.
SHIFTED_OF = 5

TEXTS = {
    "car.txt": ("A red sports car speeds along the motorway past the trucks.", "vehicle"),
    "car_similar.txt": ("A fast red car races down the highway, overtaking lorries.", None),
    "car_near.txt": ("a red sports car speeds along the motorway past the trucks. ", None),
    "soup.txt": ("A bowl of hot tomato soup with fresh basil and bread on the side.", "food"),
    "cake.txt": ("Chocolate cake with cream and strawberries, served for dessert.", "food"),
    "dog.txt": ("A small brown dog chases a ball across the park lawn.", "animal"),
    "cat.txt": ("The grey cat sleeps on the warm windowsill all afternoon.", "animal"),
    "bus.txt": ("The city bus stops at the station to pick up commuters.", "vehicle"),
    "repetitive.txt": ("buy now buy now buy now buy now buy now buy now buy now buy now buy now", None),
}


@dataclass
class Planted:
    folder: Path
    digits: dict[str, int] = field(default_factory=dict)  # file -> digit class
    defects: dict[str, str] = field(default_factory=dict)  # file -> issue it must be flagged with
    near_duplicate: tuple[str, str] = ("", "")  # (copy, original) by pHash
    text_duplicate: tuple[str, str] = ("car_near.txt", "car.txt")  # by embedding
    image_neighbour: tuple[str, str] = ("", "")  # (neighbour, sample)
    text_neighbour: tuple[str, str] = ("car_similar.txt", "car.txt")
    unlabelled: set[str] = field(default_factory=set)  # files without a label in the manifest


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _digit(images: np.ndarray, i: int) -> Image.Image:
    # Strokes at 220, background at 20: sharp, neither blown out nor black.
    small = Image.fromarray((20 + images[i] * 200 / 16).astype(np.uint8))
    return small.resize((SIDE, SIDE), Image.Resampling.NEAREST).convert("RGB")  # sharp blocks, not blurry


def _wav(x: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def make_planted(folder: Path, seed: int = 0) -> Planted:
    """Write the files and a ``manifest.jsonl`` (labels for some) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    digits = load_digits()
    out = Planted(folder=folder)
    meta: dict[str, dict[str, object]] = {}  # file -> its manifest metadata
    blobs: dict[str, bytes] = {}
    for i in range(N_DIGITS):
        name = f"digit_{i:02d}.png"
        blobs[name] = _png(_digit(digits.images, i))
        out.digits[name] = int(digits.target[i])
        meta[name] = {"label": str(digits.target[i])} if i < N_LABELLED else {}
    # Each defect from a digit of its own: copies of one base would share a pHash.
    base = {k: np.asarray(_digit(digits.images, 60 + k), dtype=np.float32) for k in range(4)}
    defects = {
        "defect_blurry.png": _digit(digits.images, 60).filter(ImageFilter.GaussianBlur(8)),
        "defect_dark.png": Image.fromarray((base[1] * 0.08).astype(np.uint8)),
        "defect_overexposed.png": Image.fromarray(np.clip(base[2] * 0.3 + 235, 0, 255).astype(np.uint8)),
        "defect_noisy.png": Image.fromarray(
            np.clip(base[3] + rng.normal(0, 40, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
        ),
    }
    for name, img in defects.items():
        blobs[name] = _png(img)
        meta[name] = {}
        out.defects[name] = name.removeprefix("defect_").removesuffix(".png")
    blobs["zz_shift1.png"] = _png(ImageChops.offset(_digit(digits.images, SHIFTED_OF), 1, 1))
    meta["zz_shift1.png"] = {}
    out.near_duplicate = ("zz_shift1.png", f"digit_{SHIFTED_OF:02d}.png")
    shifted = ImageChops.offset(_digit(digits.images, NEIGHBOUR_OF), 8, 8)
    blobs["zz_shifted.png"] = _png(shifted)
    meta["zz_shifted.png"] = {}
    out.image_neighbour = ("zz_shifted.png", f"digit_{NEIGHBOUR_OF:02d}.png")
    for name, (text, label) in TEXTS.items():
        blobs[name] = text.encode()
        meta[name] = {"label": label} if label else {}
    out.defects["repetitive.txt"] = "repetitive"
    t = np.arange(16000) / 16000
    blobs["tone.wav"] = _wav(0.4 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 0.002, t.size))
    blobs["clipped.wav"] = _wav(np.clip(3.0 * np.sin(2 * np.pi * 220 * t), -1, 1))
    meta["tone.wav"], meta["clipped.wav"] = {}, {}
    out.defects["clipped.wav"] = "clipping"
    out.unlabelled = {name for name in blobs if "label" not in meta[name]}
    for name, data in blobs.items():
        (folder / name).write_bytes(data)
    with (folder / "manifest.jsonl").open("w", encoding="utf-8") as fh:
        for name in sorted(blobs):
            fh.write(json.dumps({"file": name, **meta[name]}) + "\n")
    return out


def make_second(folder: Path, first: Planted) -> dict[str, str]:
    """A second dataset's files that duplicate the first's: an exact copy and
    a 1-pixel shift; returns ``{file: the first dataset's file it copies}``."""
    folder.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    exact, shifted = "digit_03.png", "digit_07.png"
    (folder / "copy_of_03.png").write_bytes((first.folder / exact).read_bytes())
    (folder / "shift_of_07.png").write_bytes(_png(ImageChops.offset(_digit(digits.images, 7), 1, 1)))
    (folder / "fresh.png").write_bytes(_png(_digit(digits.images, 50)))
    return {"copy_of_03.png": exact, "shift_of_07.png": shifted}
