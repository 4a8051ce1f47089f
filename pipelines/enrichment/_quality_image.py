"""Image quality measures, computed on stacks of equal-sized images.

Every image is brought to a *working image* whose long side is at most
``working_size`` (PIL's box ``reduce`` by an integer factor, so a 4000 px photo
is judged as a thumbnail a person would look at). Working images of one shape
are stacked and measured together; each measure is a 0..1 score, higher = more
of the issue:

* ``blurry``: the blur effect of Crété-Roffet et al. (2007), the mean over rows
  and columns of ``sum(min(|d1|, |d9| / 9)) / sum(|d1|)`` where ``d1`` is the
  neighbour difference and ``d9`` the difference 9 pixels apart (the neighbour
  difference of a 9-tap box-blurred copy). Re-blurring a sharp image destroys
  most of its neighbour differences (score near 0.2); a blurry one has little
  left to lose (0.5 and up). A ratio, so it ignores contrast.
* ``noisy``: noise sigma in grey levels, from the finest band of Immerkær's
  3x3 mask (separable second differences, blind to planes and ramps) averaged
  over 4x4 blocks; the 10th percentile of those block levels reads the
  flattest part of the image. The same is measured on a 2x box-downscaled copy:
  white noise halves there while image detail does not, so
  ``sigma = sqrt(4/3 * (fine^2 - coarse^2))`` keeps the noise and drops the
  texture. Score ``min(1, sigma / 20)``. Measured on a native-resolution centre
  crop, since downscaling averages noise away; images under 12 px a side
  score 0 (too small to tell noise from detail).
* ``dark``: ``1 - p99 / 255`` of luma: nothing in the picture gets bright.
* ``overexposed``: share of blown-out pixels: at least two of R, G, B at 250
  or more (a gray pixel: its value). One clipped channel is a saturated
  colour (an orange petal), two or three are highlights gone to white,
  yellow or cyan.
* ``low_information``: ``1 - H / 6``, ``H`` the entropy in bits of the luma
  histogram in 64 bins equally wide in ``log(luma + 16)`` (6 bits = every bin
  equally used). Log-spaced bins follow Weber's law: a step in the shadows
  counts like a proportionally larger one in the highlights, so an
  underexposed photo keeps its information while a near-uniform frame does not.
* ``grayscale``: ``1 - min(1, p90(max(R,G,B) - min(R,G,B)) / 10)``: 1 when
  nine pixels in ten carry no colour at all.
* ``odd_aspect_ratio``: ``1 - short / long`` side.
* ``odd_size``: ``max(1 - short / (2 * min_side), pixels / (2 * max_pixels))``
  clipped to 0..1: 0.5 exactly at ``min_side`` or at ``max_pixels``.

Luma is BT.601 in integer arithmetic (``(77 R + 150 G + 29 B + 128) >> 8``),
so the histogram, blur and noise measures work on int16 stacks.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from PIL import Image

from app.errors import InputError

__all__ = ["image_scores"]

_BLUR_SPAN = 9
_BLUR_MIN_SIDE = 4 * _BLUR_SPAN
_NOISE_BLOCK = 4
_NOISE_PERCENTILE = 0.10
# The 10th-percentile blocks read low on pure noise (a mean of 16 correlated
# |N| still spreads), the coarse level more so; this factor makes a flat or
# ramp image with Gaussian noise of sigma s measure s (calibrated, s = 1..30).
_NOISE_GAIN = 1.57
_NOISE_FULL_SCALE = 20.0
_BLOWN = 250
_INFO_BINS = 64
_INFO_OFFSET = 16.0
_CHROMA_FULL = 10.0
# Immerkær's mask [[1,-2,1],[-2,4,-2],[1,-2,1]] has L2 norm 6; E|N(0, 36 s^2)| = 6 s sqrt(2/pi).
_MASK_MEAN_ABS = 6.0 * math.sqrt(2.0 / math.pi)
_SATURATED_LOW, _SATURATED_HIGH = 2, 253


def image_scores(
    images: Sequence[np.ndarray],
    *,
    working_size: int = 256,
    min_side: int = 64,
    max_pixels: int = 50_000_000,
    batch_pixels: int = 1 << 20,
) -> dict[str, np.ndarray]:
    """Scores for each image, one float64 array (len(images),) per issue."""
    n = len(images)
    sizes = np.zeros((n, 2), dtype=np.float64)
    work_groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    crop_groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    works: list[np.ndarray] = []
    crops: dict[int, np.ndarray] = {}  # only where the working image is not the native one
    for i, img in enumerate(images):
        arr = _as_pixels(img, i)
        h, w = arr.shape[:2]
        sizes[i] = (h, w)
        work = _working(arr, working_size)
        works.append(work)
        work_groups[work.shape].append(i)
        if work is not arr or h > working_size or w > working_size:
            crops[i] = _centre_crop(arr, working_size)
            crop_groups[crops[i].shape].append(i)

    out = {name: np.zeros(n) for name in ("blurry", "noisy", "dark", "overexposed", "low_information", "grayscale")}
    for shape, members in work_groups.items():
        for idx in _chunks(members, shape, batch_pixels):
            stack = np.stack([works[i] for i in idx])
            luma = _luma(stack)
            scores = _stack_scores(stack, luma)
            for name, values in scores.items():
                out[name][idx] = values
            own = [j for j, i in enumerate(idx) if i not in crops]  # noise comes with the working image
            if own:
                out["noisy"][[idx[j] for j in own]] = _noise_sigma(luma[own])
    for shape, members in crop_groups.items():
        for idx in _chunks(members, shape, batch_pixels):
            luma = _luma(np.stack([crops[i] for i in idx]))
            out["noisy"][idx] = _noise_sigma(luma)
    out["noisy"] = np.minimum(1.0, out["noisy"] / _NOISE_FULL_SCALE)

    short, long_ = sizes.min(axis=1), sizes.max(axis=1)
    out["odd_aspect_ratio"] = 1.0 - short / long_ if n else np.zeros(0)
    small = np.clip(1.0 - short / (2.0 * min_side), 0.0, 1.0)
    huge = np.clip(sizes.prod(axis=1) / (2.0 * max_pixels), 0.0, 1.0)
    out["odd_size"] = np.maximum(small, huge)
    return out


# --- preparation ------------------------------------------------------------------
def _as_pixels(img: object, index: int) -> np.ndarray:
    """uint8 HxWxC with C = 1 (gray) or 3 (RGB); alpha dropped."""
    if not isinstance(img, np.ndarray):
        raise InputError(f"image {index}: expected a numpy array, got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise InputError(f"image {index}: expected uint8 pixels, got {img.dtype}")
    if img.ndim == 2:
        arr = img[:, :, None]
    elif img.ndim == 3 and img.shape[2] in (1, 2, 3, 4):
        arr = img[:, :, :1] if img.shape[2] <= 2 else img[:, :, :3]
    else:
        raise InputError(f"image {index}: expected HxW or HxWx1..4, got shape {img.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"image {index}: empty image of shape {img.shape}")
    return arr


def _working(arr: np.ndarray, working_size: int) -> np.ndarray:
    factor = math.ceil(max(arr.shape[:2]) / working_size)
    if factor <= 1:
        return arr
    channels = arr.shape[2]
    pil = Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if channels == 1 else arr))
    small = np.asarray(pil.reduce(factor))
    return small[:, :, None] if channels == 1 else small


def _centre_crop(arr: np.ndarray, size: int) -> np.ndarray:
    h, w = arr.shape[:2]
    ch, cw = min(h, size), min(w, size)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return arr[y0 : y0 + ch, x0 : x0 + cw]


def _chunks(members: list[int], shape: tuple[int, ...], batch_pixels: int) -> list[list[int]]:
    per = max(1, batch_pixels // max(1, shape[0] * shape[1]))
    return [members[k : k + per] for k in range(0, len(members), per)]


def _luma(stack: np.ndarray) -> np.ndarray:
    """int16 luma (n, h, w) of a uint8 (n, h, w, C) stack."""
    if stack.shape[3] == 1:
        return stack[:, :, :, 0].astype(np.int16)
    r, g, b = (stack[:, :, :, c].astype(np.uint16) for c in range(3))
    y = r * 77
    y += g * 150
    y += b * 29
    y += 128
    y >>= 8
    return y.astype(np.int16)


# --- measures on a stack --------------------------------------------------------------
def _info_bins() -> np.ndarray:
    """256 x 64 0/1 matrix folding grey levels into log-spaced bins."""
    levels = np.log(np.arange(256) + _INFO_OFFSET)
    span = (levels - levels[0]) / (levels[-1] - levels[0])
    index = np.minimum((span * _INFO_BINS).astype(np.intp), _INFO_BINS - 1)
    fold = np.zeros((256, _INFO_BINS))
    fold[np.arange(256), index] = 1.0
    return fold


_FOLD = _info_bins()


def _stack_scores(stack: np.ndarray, luma: np.ndarray) -> dict[str, np.ndarray]:
    n = luma.shape[0]
    # Histogram measures read every other pixel of larger images: the same shares
    # and percentiles within a fraction of a per cent, at a quarter of the cost.
    step = 2 if min(luma.shape[1:]) >= 64 else 1
    sub, sub_luma = stack[:, ::step, ::step], luma[:, ::step, ::step]
    hist = _histograms(sub_luma.reshape(n, -1), 256)
    total = hist.sum(axis=1, keepdims=True).astype(np.float64)
    p = (hist @ _FOLD) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    cdf = np.cumsum(hist, axis=1)
    p99 = (cdf < 0.99 * total).sum(axis=1)
    scores = {
        "dark": 1.0 - p99 / 255.0,
        "low_information": np.clip(1.0 - entropy / math.log2(_INFO_BINS), 0.0, 1.0),
        "blurry": _blur_effect(luma),
    }
    if stack.shape[3] == 1:
        scores["grayscale"] = np.ones(n)
        scores["overexposed"] = hist[:, _BLOWN:].sum(axis=1) / total[:, 0]
    else:
        # Element-wise over the three planes: numpy reductions along a length-3 axis are slow.
        r, g, b = sub[:, :, :, 0], sub[:, :, :, 1], sub[:, :, :, 2]
        chroma = np.maximum(np.maximum(r, g), b)
        chroma -= np.minimum(np.minimum(r, g), b)
        hr, hg, hb = r >= _BLOWN, g >= _BLOWN, b >= _BLOWN
        blown = (hr & (hg | hb)) | (hg & hb)
        scores["overexposed"] = np.count_nonzero(blown.reshape(n, -1), axis=1) / total[:, 0]
        chist = _histograms(chroma.reshape(n, -1), 256)
        p90 = (np.cumsum(chist, axis=1) < 0.90 * total).sum(axis=1)
        scores["grayscale"] = 1.0 - np.minimum(1.0, p90 / _CHROMA_FULL)
    return scores


def _histograms(values: np.ndarray, bins: int) -> np.ndarray:
    """Per-row bincount of small non-negative ints, in one bincount call."""
    n = values.shape[0]
    offsets = (np.arange(n, dtype=np.intp) * bins)[:, None]
    flat = (values.astype(np.intp) + offsets).ravel()
    return np.bincount(flat, minlength=n * bins).reshape(n, bins)


def _blur_effect(luma: np.ndarray) -> np.ndarray:
    """Mean over the two directions of the blur effect; 0 where no direction fits."""
    k = _BLUR_SPAN
    n, h, w = luma.shape
    pairs = []
    # Under 4 spans (36 px) the box blur covers the picture: no reading.
    if h >= _BLUR_MIN_SIDE:
        pairs.append((luma[:, : h - k], luma[:, 1 : h - k + 1], luma[:, k:]))
    if w >= _BLUR_MIN_SIDE:
        pairs.append((luma[:, :, : w - k], luma[:, :, 1 : w - k + 1], luma[:, :, k:]))
    parts = []
    for a, near, far in pairs:
        d1 = np.abs(near - a)
        dk = np.abs(far - a)
        # min(d1, dk / k) * k in integers: the sums stay exact.
        kept = np.minimum(d1 * k, dk).reshape(n, -1).sum(axis=1, dtype=np.int64)
        total = d1.reshape(n, -1).sum(axis=1, dtype=np.int64)
        # A perfectly flat image has nothing to blur: score 0, low_information covers it.
        parts.append(np.where(total > 0, kept / (k * np.maximum(total, 1)), 0.0))
    if not parts:
        return np.zeros(n)
    return np.mean(parts, axis=0)


def _noise_sigma(luma: np.ndarray) -> np.ndarray:
    """Noise sigma in grey levels: fine-band level minus what persists one octave down."""
    # int16 is exact here: the band of 0..255 values stays within +-2040 and a
    # 4x4 block sum within +-32640.
    fine = _band_level(luma, luma)
    n, h, w = luma.shape
    h2, w2 = h // 2, w // 2
    if h2 < 2 + _NOISE_BLOCK or w2 < 2 + _NOISE_BLOCK:
        # Too small to tell noise from detail: report none rather than guess.
        return np.zeros(n)
    half = luma[:, : 2 * h2, : 2 * w2].astype(np.int32)
    sums = _blocks(half, 2, np.add)
    coarse = _band_level(sums, sums // 4) / 4.0
    return np.sqrt(np.maximum(0.0, (fine**2 - coarse**2) * (4.0 / 3.0)))


def _band_level(values: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Robust per-image sigma of ``values`` in Immerkær's band (0 where it cannot be read)."""
    n, h, w = values.shape
    b = _NOISE_BLOCK
    hb, wb = (h - 2) // b, (w - 2) // b
    if hb < 1 or wb < 1:
        return np.zeros(n)
    dx = values[:, :, :-2] - 2 * values[:, :, 1:-1] + values[:, :, 2:]
    band = np.abs(dx[:, :-2] - 2 * dx[:, 1:-1] + dx[:, 2:])[:, : hb * b, : wb * b]
    level = _blocks(band, b, np.add).reshape(n, -1)
    inner = grey[:, 1 : 1 + hb * b, 1 : 1 + wb * b]
    lo = _blocks(inner, b, np.minimum).reshape(n, -1)
    hi = _blocks(inner, b, np.maximum).reshape(n, -1)
    # Noise cannot show where the sensor clipped: leave saturated blocks out.
    usable = ~((hi <= _SATURATED_LOW) | (lo >= _SATURATED_HIGH))
    counts = usable.sum(axis=1)
    ranked = np.sort(np.where(usable, level, np.iinfo(np.int64).max), axis=1)
    pick = np.clip((counts * _NOISE_PERCENTILE).astype(np.intp), 0, level.shape[1] - 1)
    chosen = np.take_along_axis(ranked, pick[:, None], axis=1)[:, 0].astype(np.float64)
    sigma = chosen / (b * b) / _MASK_MEAN_ABS * _NOISE_GAIN
    return np.where(counts > 0, sigma, 0.0)


def _blocks(values: np.ndarray, b: int, op: np.ufunc) -> np.ndarray:
    """Fold b x b blocks of (n, h, w) with ``op`` using strided slices (fast, unlike small-axis reductions)."""
    rows = values[:, 0::b]
    for k in range(1, b):
        rows = op(rows, values[:, k::b])
    out = rows[:, :, 0::b]
    for k in range(1, b):
        out = op(out, rows[:, :, k::b])
    return out
