"""Image quality detectors against a mixed set of clean and damaged images.

Clean images are crops of scikit-learn's bundled photos, synthetic scenes
(two-colour gradients, fractal texture, shapes with gradient fills, sensor
grain) and upscaled handwritten digits pasted on such scenes. Each damaged
image is a fresh clean one with one known defect. Every detector must reach
precision and recall >= 0.9 on the whole set: a flag on a clean image, or on
an image damaged some other way, counts against precision. Building and
scoring the 256 images takes about 5 s of CPU, hence the ``slow`` marks.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from app.errors import InputError
from pipelines.enrichment import IMAGE_ISSUES, QualityThresholds, score_images

SEED = 20240611
N_CLEAN = 96
N_EACH = 20


# --- clean images ---------------------------------------------------------------------
@functools.cache
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(load_sample_images().images)


@functools.cache
def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images / 16.0


def _resize(img: np.ndarray, w: int, h: int, resample: Image.Resampling = Image.Resampling.LANCZOS) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((w, h), resample))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) @ [0.299, 0.587, 0.114] if img.ndim == 3 else img.astype(np.float64)


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A crop of the temple or the flower showing part of the scene (not just sky)."""
    for _ in range(30):
        src = _photos()[int(rng.integers(2))]
        sh, sw = src.shape[:2]
        scale = rng.uniform(1.0, 1.6)
        ch, cw = min(sh, int(h * scale)), min(sw, int(w * scale))
        y0, x0 = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
        img = _resize(src[y0 : y0 + ch, x0 : x0 + cw], w, h)
        # The flower's background is out of focus: keep crops with detail in them.
        if _luma(img).std() >= 30 and np.abs(np.diff(_luma(img), axis=1)).mean() >= 4:
            return img
    return img


def _fractal(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f ** rng.uniform(1.2, 2.0)
    spec[0, 0] = 0.0
    t = np.fft.irfft2(spec, s=(h, w))
    return t / (t.std() + 1e-9)


def _scene(rng: np.random.Generator, h: int, w: int, digit: bool) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = max(h, w)
    ang = rng.uniform(0, 2 * np.pi)
    g = np.cos(ang) * xx + np.sin(ang) * yy
    g = (g - g.min()) / (np.ptp(g) + 1e-9)
    c0, c1 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    img = (c0 + (c1 - c0) * g[..., None]).astype(np.float32)
    img += _fractal(rng, h, w).astype(np.float32)[..., None] * (rng.uniform(6, 18) * rng.uniform(0.6, 1.0, 3))
    for _ in range(int(rng.integers(4, 9))):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.06, 0.25) * side
        box = (slice(max(0, int(cy - r) - 1), int(cy + r) + 2), slice(max(0, int(cx - r) - 1), int(cx + r) + 2))
        by, bx = yy[box] - cy, xx[box] - cx
        kind = int(rng.integers(3))
        if kind == 0:
            m = by**2 + bx**2 < r**2
        elif kind == 1:
            m = (np.abs(by) < r * rng.uniform(0.3, 1)) & (np.abs(bx) < r)
        else:
            a = rng.uniform(0, np.pi)
            u = bx * np.cos(a) + by * np.sin(a)
            v = -bx * np.sin(a) + by * np.cos(a)
            m = (v > -r / 2) & (v < r) & (np.abs(u) < (r - v) * 0.6)
        col, col2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        shade = np.clip(by / (2 * r) + 0.5, 0, 1)[..., None]
        region = img[box]
        region[m] = (col + (col2 - col) * shade)[m]
    if digit:
        glyph = np.kron(_digits()[int(rng.integers(len(_digits())))], np.ones((min(h, w) // 10,) * 2))
        glyph = ndimage.gaussian_filter(glyph, 0.6)[..., None]
        gh, gw = glyph.shape[:2]
        y0, x0 = (h - gh) // 2, (w - gw) // 2
        region = img[y0 : y0 + gh, x0 : x0 + gw]
        img[y0 : y0 + gh, x0 : x0 + gw] = region * (1 - glyph) + rng.uniform(0, 255, 3) * glyph
    return _u8(img + rng.normal(0, rng.uniform(0.5, 1.5), img.shape).astype(np.float32))


def _clean(rng: np.random.Generator, i: int, h: int | None = None, w: int | None = None) -> np.ndarray:
    if h is None or w is None:
        h = int(rng.integers(96, 257))
        w = int(np.clip(h * rng.uniform(0.7, 1.5), 80, 256))
    kind = i % 3
    if kind == 0:
        return _photo(rng, h, w)
    return _scene(rng, h, w, digit=kind == 2)


# --- defects ----------------------------------------------------------------------------
def _damage(rng: np.random.Generator, i: int, issue: str) -> np.ndarray:
    if issue == "odd_aspect_ratio":
        # Banners and strips cut or rendered that way, and photos stretched by 2.6-3.2x.
        h = int(rng.integers(64, 100))
        w = int(h * rng.uniform(2.7, 3.6))
        if i % 2 == 0:
            return _clean(rng, i, h, w)
        src = _clean(rng, i, h, h)
        k = rng.uniform(2.6, 3.2)
        return (
            _resize(src, int(h * k), h, Image.Resampling.BICUBIC)
            if i % 4 == 1
            else _resize(src, h, int(h * k), Image.Resampling.BICUBIC)
        )
    img = _clean(rng, i)
    f = img.astype(np.float64)
    y = _luma(img)
    if issue == "blurry":
        s = rng.uniform(2.0, 4.0)
        return _u8(ndimage.gaussian_filter(f, (s, s, 0)))
    if issue == "noisy":
        return _u8(f + rng.normal(0, rng.uniform(12, 30), f.shape))
    if issue == "dark":  # underexposed: the brightest 1 % lands at 35-80
        return _u8(f * rng.uniform(35, 80) / max(1.0, np.percentile(y, 99)))
    if issue == "overexposed":  # 25-60 % of the picture pushed past full scale
        gain = 255.0 / max(1.0, np.percentile(f.mean(axis=2), 100 * (1 - rng.uniform(0.25, 0.6))))
        return _u8(f * gain + rng.uniform(0, 30))
    if issue == "odd_size":  # thumbnails with a 12-40 px short side
        s = rng.uniform(12, 40) / min(img.shape[:2])
        return _resize(img, max(2, round(img.shape[1] * s)), max(2, round(img.shape[0] * s)), Image.Resampling.BOX)
    if issue == "grayscale":
        gray = np.asarray(Image.fromarray(img).convert("L"))
        return gray if i % 2 else np.repeat(gray[..., None], 3, axis=2)
    if issue == "low_information":
        h, w = img.shape[:2]
        base = rng.uniform(90, 210, 3)
        kind = i % 3
        if kind == 0:  # a blank wall: flat colour, a faint ramp and sensor grain
            ramp = np.linspace(-4, 4, h)[:, None, None]
            return _u8(base + ramp + rng.normal(0, 1.0, (h, w, 3)))
        if kind == 1:  # a fogged, out-of-focus frame
            soft = ndimage.gaussian_filter(f, (8, 8, 0))
            return _u8(base + (soft - soft.mean()) * rng.uniform(0.02, 0.04) + rng.normal(0, 0.8, f.shape))
        out = np.broadcast_to(base, (h, w, 3)).copy()  # a blank page with one small mark
        y0, x0 = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
        out[y0 : y0 + 6, x0 : x0 + 6] = rng.uniform(0, 255, 3)
        return _u8(out + rng.normal(0, 0.8, out.shape))
    raise AssertionError(issue)


@functools.cache
def _mixed_set() -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(SEED)
    images = [_clean(rng, i) for i in range(N_CLEAN)]
    labels = ["clean"] * N_CLEAN
    for issue in IMAGE_ISSUES:
        images += [_damage(rng, j, issue) for j in range(N_EACH)]
        labels += [issue] * N_EACH
    return images, np.array(labels)


@pytest.fixture(scope="module")
def scored() -> tuple[list[np.ndarray], np.ndarray, list]:
    images, labels = _mixed_set()
    return images, labels, score_images(images)


# --- the tests -----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("issue", IMAGE_ISSUES)
def test_each_detector_has_precision_and_recall_of_at_least_0_9(scored, issue: str) -> None:
    _, labels, reports = scored
    flagged = np.array([issue in r.issues for r in reports])
    truth = labels == issue
    tp = int((flagged & truth).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / int(truth.sum())
    wrong = sorted(set(labels[flagged & ~truth]))
    missed = sorted(f"{r.scores[issue]:.3f}" for r, t, f in zip(reports, truth, flagged, strict=True) if t and not f)
    assert precision >= 0.9, f"{issue}: precision {precision:.2f}, also flags {wrong}"
    assert recall >= 0.9, f"{issue}: recall {recall:.2f}, missed scores {missed}"


@pytest.mark.slow
def test_clean_images_are_rarely_flagged_at_all(scored) -> None:
    _, labels, reports = scored
    flagged = [r.issues for r, lab in zip(reports, labels, strict=True) if lab == "clean" and r.issues]
    assert len(flagged) <= 0.05 * N_CLEAN, flagged


@pytest.mark.slow
def test_reports_carry_every_image_issue_as_a_unit_score(scored) -> None:
    _, _, reports = scored
    for r in reports:
        assert tuple(r.scores) == IMAGE_ISSUES
        assert all(0.0 <= v <= 1.0 for v in r.scores.values())
        assert set(r.issues) <= set(IMAGE_ISSUES)


@pytest.mark.slow
def test_scores_do_not_depend_on_batch_composition() -> None:
    images, _ = _mixed_set()
    subset = images[::7]
    together = score_images(subset)
    alone = [score_images([img])[0] for img in subset]
    for a, b in zip(together, alone, strict=True):
        assert a.scores == pytest.approx(b.scores, abs=1e-12)


def test_large_images_are_judged_at_the_working_size_and_noise_at_full_resolution() -> None:
    rng = np.random.default_rng(3)
    big = _resize(_photo(rng, 240, 320), 1280, 960)  # a 1.2 MP photo, sharp at thumbnail size
    noisy = _u8(big.astype(np.float64) + rng.normal(0, 15, big.shape))
    clean_rep, noisy_rep = score_images([big, noisy])
    assert "blurry" not in clean_rep.issues and "noisy" not in clean_rep.issues
    # Downscaling by 5 would hide this noise; the native-resolution crop sees it.
    assert "noisy" in noisy_rep.issues
    assert noisy_rep.scores["noisy"] > 4 * clean_rep.scores["noisy"]


def test_thresholds_move_the_flags_and_odd_size_covers_huge_images() -> None:
    rng = np.random.default_rng(5)
    img = _clean(rng, 1, 128, 128)
    (rep,) = score_images([img])
    blur = rep.scores["blurry"]
    assert "blurry" in score_images([img], QualityThresholds(blurry=blur - 0.01))[0].issues
    assert "blurry" not in score_images([img], QualityThresholds(blurry=blur + 0.01))[0].issues
    (huge,) = score_images([img], QualityThresholds(max_pixels=10_000))
    assert "odd_size" in huge.issues and huge.scores["odd_size"] > 0.5


def test_alpha_and_single_channel_inputs_are_accepted() -> None:
    rng = np.random.default_rng(9)
    rgb = _clean(rng, 1, 100, 120)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    a, b = score_images([rgb, rgba])
    assert a.scores == b.scores
    (gray,) = score_images([rgb[:, :, :1]])
    assert gray.scores["grayscale"] == 1.0 and "grayscale" in gray.issues


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((10, 10), np.float32), "uint8"),
        (np.zeros((10, 10, 5), np.uint8), "shape"),
        (np.zeros((0, 10), np.uint8), "empty"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_raise_one_clear_input_error(bad, message: str) -> None:
    with pytest.raises(InputError, match=message):
        score_images([np.zeros((8, 8), np.uint8), bad])


def test_empty_batches_and_tiny_images_work() -> None:
    assert score_images([]) == []
    (one,) = score_images([np.full((1, 1, 3), 128, np.uint8)])
    assert "odd_size" in one.issues and one.scores["blurry"] == 0.0 and one.scores["noisy"] == 0.0
