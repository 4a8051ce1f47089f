"""Quality scores order records sensibly and enforce hard limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipelines.ingestion import (
    AudioInfo,
    DatasetSchema,
    ImageInfo,
    TextInfo,
    decode_image,
    score_quality,
    synth_image,
)

DEFAULT = DatasetSchema.default("q")


def _image(w: int, h: int, n_bytes: int | None = None) -> ImageInfo:
    return ImageInfo(w, h, "RGB", "PNG", n_bytes if n_bytes is not None else w * h)


def _audio(seconds: float = 2.0, rate: int = 16000, peak: float = 0.5, width: int = 2) -> AudioInfo:
    n = int(seconds * rate)
    return AudioInfo(seconds, rate, 1, width, n, n * width + 44, peak)


def _text(chars: int, nonspace: int | None = None, control: int = 0) -> TextInfo:
    return TextInfo(chars, 1, chars, chars if nonspace is None else nonspace, control)


def _schema(**sections: dict[str, object]) -> DatasetSchema:
    return DatasetSchema.model_validate({"name": "q", **sections})


def test_image_scores_increase_with_resolution() -> None:
    sides = [4, 8, 16, 32, 64, 128, 224, 1024]
    scores = [score_quality(_image(s, s), DEFAULT).score for s in sides]
    assert scores == sorted(scores) and len(set(scores[:-1])) == len(scores) - 1
    assert scores[-1] == scores[-2] == 1.0  # at or above the target side
    assert not score_quality(_image(8, 8), DEFAULT).passed
    assert score_quality(_image(200, 200), DEFAULT).passed


def test_extreme_aspect_ratio_and_blank_images_score_lower() -> None:
    square = score_quality(_image(512, 512), DEFAULT).score
    wide = score_quality(_image(4096, 512), DEFAULT).score
    blank = score_quality(_image(512, 512, n_bytes=600), DEFAULT)
    assert wide < square and blank.score < square
    assert any(issue.startswith("density") for issue in blank.issues)


def test_real_images_pass_and_a_tiny_one_fails() -> None:
    rng = np.random.default_rng(0)
    for size, expected in ((256, True), (200, True), (8, False)):
        buf = io.BytesIO()
        synth_image(rng, size).save(buf, format="PNG")
        report = score_quality(decode_image(buf.getvalue()), DEFAULT)
        assert report.passed is expected, report.summary()
    flat = io.BytesIO()
    Image.new("RGB", (1024, 1024), (90, 90, 90)).save(flat, format="PNG")
    assert score_quality(decode_image(flat.getvalue()), DEFAULT).components["density"] < 0.5


@pytest.mark.parametrize(
    ("limits", "info", "violation"),
    [
        ({"min_width": 300}, _image(256, 512), "min_width"),
        ({"min_height": 300}, _image(512, 256), "min_height"),
        ({"max_aspect_ratio": 1.5}, _image(512, 256), "max_aspect_ratio"),
        ({"max_bytes": 1000}, _image(512, 512), "max_bytes"),
    ],
)
def test_image_hard_limits_zero_the_score(limits: dict[str, object], info: ImageInfo, violation: str) -> None:
    report = score_quality(info, _schema(image=limits))
    assert report.score == 0.0 and not report.passed
    assert report.violations and report.violations[0].startswith(violation)
    assert report.violations[0] in report.issues
    assert score_quality(info, DEFAULT).passed  # fine without the limit


def test_audio_scores_order_by_duration_rate_loudness_and_depth() -> None:
    durations = [score_quality(_audio(seconds=s), DEFAULT).score for s in (0.05, 0.2, 0.5, 1.0)]
    assert durations == sorted(durations) and durations[0] < durations[-1] == 1.0
    rates = [score_quality(_audio(rate=r), DEFAULT).score for r in (4000, 8000, 16000)]
    assert rates == sorted(rates) and rates[0] < rates[-1]
    silent = score_quality(_audio(peak=0.0), DEFAULT)
    assert silent.score == 0.0 and not silent.passed
    assert any(i.startswith("loudness") for i in silent.issues)
    assert score_quality(_audio(width=1), DEFAULT).score < score_quality(_audio(width=2), DEFAULT).score


@pytest.mark.parametrize(
    ("limits", "info", "violation"),
    [
        ({"min_seconds": 3}, _audio(seconds=2), "min_seconds"),
        ({"max_seconds": 1}, _audio(seconds=2), "max_seconds"),
        ({"sample_rates": [44100]}, _audio(rate=16000), "sample_rates"),
    ],
)
def test_audio_hard_limits(limits: dict[str, object], info: AudioInfo, violation: str) -> None:
    report = score_quality(info, _schema(audio=limits))
    assert report.score == 0.0 and report.violations[0].startswith(violation)


def test_text_scores_order_by_length_and_cleanliness() -> None:
    lengths = [score_quality(_text(n), DEFAULT).score for n in (1, 5, 10, 20, 2000)]
    assert lengths == sorted(lengths) and lengths[0] < 0.5 and lengths[-1] == 1.0
    assert score_quality(_text(500, nonspace=0), DEFAULT).score == 0.0  # whitespace only
    dirty = score_quality(_text(500, control=25), DEFAULT)
    assert dirty.score < score_quality(_text(500), DEFAULT).score
    assert any(i.startswith("clean") for i in dirty.issues)


def test_text_hard_limits() -> None:
    assert score_quality(_text(5), _schema(text={"min_chars": 10})).violations[0].startswith("min_chars")
    assert score_quality(_text(50), _schema(text={"max_chars": 10})).violations[0].startswith("max_chars")


def test_threshold_comes_from_the_schema() -> None:
    info = _image(64, 64)
    score = score_quality(info, DEFAULT).score
    assert 0.5 < score < 0.9
    assert score_quality(info, _schema(quality={"reject_below": 0.9})).passed is False
    assert score_quality(info, _schema(quality={"reject_below": 0.5})).passed is True
    report = score_quality(info, _schema(quality={"reject_below": 0.9}))
    assert report.threshold == 0.9 and "threshold 0.90" in report.summary()


def test_scores_and_components_stay_in_unit_interval() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        w, h = (int(v) for v in rng.integers(1, 5000, 2))
        report = score_quality(_image(w, h, int(rng.integers(1, 10**7))), DEFAULT)
        assert 0.0 <= report.score <= 1.0
        assert all(0.0 <= c <= 1.0 for c in report.components.values())
