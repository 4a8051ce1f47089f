"""Quality assessment, the first enrichment stage: per-sample issue scores for
images, audio clips and texts, computed a batch at a time with numpy.

Every issue gets a score in 0..1 (higher = more of the issue) and is flagged
when its score is above the matching :class:`QualityThresholds` field. The
measures behind the scores are described in ``_quality_image``,
``_quality_audio`` and ``_quality_text``; the defaults were chosen from the
score distributions of clean and deliberately damaged samples (see
``tests/pipelines/enrichment/test_quality_images.py`` and
``benchmarks/bench_enrich_quality.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipelines.enrichment._quality_audio import audio_scores
from pipelines.enrichment._quality_image import image_scores
from pipelines.enrichment._quality_text import text_scores

__all__ = [
    "IMAGE_ISSUES",
    "AUDIO_ISSUES",
    "TEXT_ISSUES",
    "QualityThresholds",
    "QualityReport",
    "score_images",
    "score_audio",
    "score_texts",
]

IMAGE_ISSUES: tuple[str, ...] = (
    "blurry",
    "noisy",
    "dark",
    "overexposed",
    "low_information",
    "odd_aspect_ratio",
    "odd_size",
    "grayscale",
)
AUDIO_ISSUES: tuple[str, ...] = ("clipping", "silence", "low_snr")
TEXT_ISSUES: tuple[str, ...] = ("too_short", "too_long", "repetitive", "non_printable")


class QualityThresholds(BaseModel):
    """Flag an issue when its 0..1 score is above the threshold of the same name.

    Defaults come from the score distributions of clean and damaged samples:
    each sits between the worst clean sample and the mildest damaged one.
    """

    model_config = ConfigDict(extra="forbid")

    # images
    blurry: float = Field(
        0.43, ge=0, le=1, description="blur effect; ~0.3 sharp, 0.44+ = Gaussian blur sigma 2 px at the working size"
    )
    noisy: float = Field(0.25, ge=0, le=1, description="noise sigma / 20 grey levels: 0.25 = sigma 5")
    dark: float = Field(0.65, ge=0, le=1, description="1 - p99 luma / 255: 0.65 = the brightest 1 % stays under 89")
    overexposed: float = Field(0.15, ge=0, le=1, description="share of blown-out pixels (two or more channels >= 250)")
    low_information: float = Field(
        0.75, ge=0, le=1, description="1 - luma entropy / 6 bits (log-spaced bins): 0.75 = under 1.5 bits"
    )
    odd_aspect_ratio: float = Field(0.6, ge=0, le=1, description="1 - short / long side: 0.6 = 2.5:1")
    odd_size: float = Field(0.5, ge=0, le=1, description="0.5 = short side at min_side, or area at max_pixels")
    grayscale: float = Field(
        0.7, ge=0, le=1, description="1 - p90 chroma / 10: 0.7 = nine pixels in ten within 3 levels of gray"
    )
    # audio
    clipping: float = Field(
        0.1, ge=0, le=1, description="share of samples in flat runs at the peak / 1 %: 0.1 = 0.1 % clipped"
    )
    silence: float = Field(0.5, ge=0, le=1, description="share of frames 40 dB below the loud ones or under -60 dBFS")
    low_snr: float = Field(0.15, ge=0, le=1, description="noise share of the power N / (S + N): 0.15 = SNR 7.5 dB")
    # text
    too_short: float = Field(0.5, ge=0, le=1, description="1 - chars / (2 * min_chars): 0.5 = min_chars")
    too_long: float = Field(0.5, ge=0, le=1, description="chars / (2 * max_chars): 0.5 = max_chars")
    repetitive: float = Field(
        0.5, ge=0, le=1, description="share of word 3-grams (char 5-grams for few words) repeating an earlier one"
    )
    non_printable: float = Field(
        0.1, ge=0, le=1, description="share of control, unassigned or replacement characters x 10: 0.1 = 1 %"
    )

    # the scales scores are measured against
    working_size: int = Field(256, ge=32, le=4096, description="long side images are judged at (box-reduced)")
    min_side: int = Field(64, ge=1, description="images with a shorter short side are odd_size")
    max_pixels: int = Field(50_000_000, ge=1, description="images with more pixels are odd_size")
    min_chars: int = Field(20, ge=1, description="texts with fewer non-space characters are too_short")
    max_chars: int = Field(20_000, ge=1, description="texts with more characters are too_long")

    def limit(self, issue: str) -> float:
        """The threshold for ``issue`` (one of the *_ISSUES names)."""
        return float(getattr(self, issue))


@dataclass(frozen=True)
class QualityReport:
    """One sample's scores (every issue of its modality) and the flagged issues."""

    scores: dict[str, float]
    issues: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.issues


def score_images(images: Sequence[np.ndarray], thresholds: QualityThresholds | None = None) -> list[QualityReport]:
    """Score uint8 HxW or HxWx3/4 arrays of any sizes (equal-sized ones are measured together)."""
    t = thresholds or QualityThresholds()
    scores = image_scores(images, working_size=t.working_size, min_side=t.min_side, max_pixels=t.max_pixels)
    return _reports(scores, IMAGE_ISSUES, len(images), t)


def score_audio(
    clips: Sequence[tuple[np.ndarray, int]], thresholds: QualityThresholds | None = None
) -> list[QualityReport]:
    """Score (samples, sample_rate) clips; int samples are read against their type's full scale,
    float ones against 1.0; multi-channel (n, channels) clips are mixed down."""
    t = thresholds or QualityThresholds()
    return _reports(audio_scores(clips), AUDIO_ISSUES, len(clips), t)


def score_texts(texts: Sequence[str], thresholds: QualityThresholds | None = None) -> list[QualityReport]:
    """Score texts for length, repetition and non-printable characters."""
    t = thresholds or QualityThresholds()
    scores = text_scores(texts, min_chars=t.min_chars, max_chars=t.max_chars)
    return _reports(scores, TEXT_ISSUES, len(texts), t)


def _reports(
    scores: Mapping[str, np.ndarray], names: tuple[str, ...], n: int, t: QualityThresholds
) -> list[QualityReport]:
    limits = np.array([t.limit(name) for name in names])
    table = np.stack([np.clip(np.asarray(scores[name], dtype=np.float64), 0.0, 1.0) for name in names], axis=1)
    table = table.reshape(n, len(names))
    flagged = table > limits
    return [
        QualityReport(
            scores={name: float(v) for name, v in zip(names, row, strict=True)},
            issues=tuple(name for name, f in zip(names, flags, strict=True) if f),
        )
        for row, flags in zip(table, flagged, strict=True)
    ]
