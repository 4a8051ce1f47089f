"""Quality scoring of decoded records.

Each modality yields a few components in [0, 1]; the score is their weighted
geometric mean, so one bad component drags the score down hard (a 4x4 image is
not rescued by a good aspect ratio)::

    score = prod(c_i ** w_i) ** (1 / sum(w_i))

Components (``s`` = short side, ``a`` = long/short side, ``t`` = schema's
``image.target_short_side``):

* image: ``resolution = min(1, s / t) ** 0.5`` (weight 0.6),
  ``aspect = min(1, 2 / a) ** 0.5`` (0.2),
  ``density = min(1, bytes_per_pixel / 0.05) ** 0.5`` (0.2; near-zero bytes per
  pixel means a blank or crushed image).
* audio: ``duration = min(1, d / max(1 s, 2 * min_seconds)) ** 0.5`` (0.4),
  ``sample_rate = min(1, rate / 16 kHz) ** 0.5`` (0.3),
  ``loudness = min(1, peak / 0.01) ** 0.5`` (0.2; 0 for digital silence),
  ``bit_depth = 1 if >= 16-bit else 0.6`` (0.1).
* text: ``length = min(1, non_space_chars / max(20, 2 * min_chars)) ** 0.5`` (0.7),
  ``clean = max(0, 1 - 10 * control_chars / chars)`` (0.3).

Hard limits from the schema (``min_width``, ``max_bytes``, ``sample_rates``,
``max_chars``...) are not weighed: a violation is listed in ``violations``
(and ``issues``) and sets the score to 0. A component below 0.8 adds an issue.
The caller quarantines a record with reason ``low_quality`` when
``not report.passed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._decode import AudioInfo, DecodedInfo, ImageInfo, TextInfo
from ._schema import DatasetSchema

__all__ = ["QualityReport", "score_quality"]

_ISSUE_BELOW = 0.8
_FULL_DENSITY_BPP = 0.05
_FULL_RATE_HZ = 16_000
_AUDIBLE_PEAK = 0.01


@dataclass(frozen=True)
class QualityReport:
    score: float
    components: dict[str, float]
    issues: list[str] = field(default_factory=list)
    # Hard-limit violations (also in ``issues``); any one fails the record.
    violations: list[str] = field(default_factory=list)
    threshold: float = 0.5

    @property
    def passed(self) -> bool:
        return not self.violations and self.score >= self.threshold

    def summary(self) -> str:
        """One line for a quarantine detail or a log."""
        head = f"quality {self.score:.2f} (threshold {self.threshold:.2f})"
        return f"{head}: {'; '.join(self.issues)}" if self.issues else head


def score_quality(info: DecodedInfo, schema: DatasetSchema) -> QualityReport:
    """Score one decoded record against its dataset's schema."""
    if isinstance(info, ImageInfo):
        parts = _image(info, schema)
    elif isinstance(info, AudioInfo):
        parts = _audio(info, schema)
    elif isinstance(info, TextInfo):
        parts = _text(info, schema)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"cannot score {type(info).__name__}")
    weighted, soft_issues, violations = parts
    components = {name: round(value, 4) for name, (value, _) in weighted.items()}
    score = 0.0 if violations else _geometric_mean(weighted)
    return QualityReport(
        score=round(score, 4),
        components=components,
        issues=violations + soft_issues,
        violations=violations,
        threshold=schema.quality.reject_below,
    )


_Parts = tuple[dict[str, tuple[float, float]], list[str], list[str]]


def _geometric_mean(weighted: dict[str, tuple[float, float]]) -> float:
    total = sum(w for _, w in weighted.values())
    if any(v <= 0.0 for v, _ in weighted.values()):
        return 0.0
    return math.exp(sum(w * math.log(v) for v, w in weighted.values()) / total)


def _ratio(value: float, full: float) -> float:
    """min(1, value / full) ** 0.5: the square root is kind to 'half as good'."""
    return min(1.0, max(0.0, value) / full) ** 0.5 if full > 0 else 1.0


def _soft(weighted: dict[str, tuple[float, float]], notes: dict[str, str]) -> list[str]:
    return [f"{name}: {notes[name]}" for name, (v, _) in weighted.items() if v < _ISSUE_BELOW]


def _image(info: ImageInfo, schema: DatasetSchema) -> _Parts:
    lim = schema.image
    w, h = info.width, info.height
    short, long_ = min(w, h), max(w, h)
    aspect = long_ / short
    bpp = info.n_bytes / (w * h)
    weighted = {
        "resolution": (_ratio(short, lim.target_short_side), 0.6),
        "aspect": (min(1.0, 2.0 / aspect) ** 0.5, 0.2),
        "density": (_ratio(bpp, _FULL_DENSITY_BPP), 0.2),
    }
    notes = {
        "resolution": f"short side {short} px < target {lim.target_short_side} px",
        "aspect": f"aspect ratio {aspect:.2f}",
        "density": f"{bpp:.4f} bytes/pixel (blank or over-compressed?)",
    }
    violations = []
    if w < lim.min_width:
        violations.append(f"min_width: width {w} < {lim.min_width}")
    if h < lim.min_height:
        violations.append(f"min_height: height {h} < {lim.min_height}")
    if lim.max_aspect_ratio is not None and aspect > lim.max_aspect_ratio:
        violations.append(f"max_aspect_ratio: {aspect:.2f} > {lim.max_aspect_ratio}")
    if lim.max_bytes is not None and info.n_bytes > lim.max_bytes:
        violations.append(f"max_bytes: {info.n_bytes} > {lim.max_bytes}")
    return weighted, _soft(weighted, notes), violations


def _audio(info: AudioInfo, schema: DatasetSchema) -> _Parts:
    lim = schema.audio
    full_duration = max(1.0, 2 * lim.min_seconds)
    weighted = {
        "duration": (_ratio(info.duration_s, full_duration), 0.4),
        "sample_rate": (_ratio(info.sample_rate, _FULL_RATE_HZ), 0.3),
        "loudness": (_ratio(info.peak, _AUDIBLE_PEAK), 0.2),
        "bit_depth": (1.0 if info.sample_width >= 2 else 0.6, 0.1),
    }
    notes = {
        "duration": f"{info.duration_s:.2f} s is short (full score at {full_duration:g} s)",
        "sample_rate": f"{info.sample_rate} Hz < {_FULL_RATE_HZ} Hz",
        "loudness": f"peak {info.peak:.4f} of full scale (silent?)",
        "bit_depth": f"{8 * info.sample_width}-bit samples",
    }
    violations = []
    if info.duration_s < lim.min_seconds:
        violations.append(f"min_seconds: {info.duration_s:.2f} s < {lim.min_seconds:g} s")
    if lim.max_seconds is not None and info.duration_s > lim.max_seconds:
        violations.append(f"max_seconds: {info.duration_s:.2f} s > {lim.max_seconds:g} s")
    if lim.sample_rates is not None and info.sample_rate not in lim.sample_rates:
        violations.append(f"sample_rates: {info.sample_rate} Hz not in {lim.sample_rates}")
    return weighted, _soft(weighted, notes), violations


def _text(info: TextInfo, schema: DatasetSchema) -> _Parts:
    lim = schema.text
    full_length = max(20, 2 * lim.min_chars)
    control_share = info.n_control / max(1, info.n_chars)
    weighted = {
        "length": (_ratio(info.n_nonspace, full_length), 0.7),
        "clean": (max(0.0, 1.0 - 10.0 * control_share), 0.3),
    }
    notes = {
        "length": f"{info.n_nonspace} non-space chars (full score at {full_length})",
        "clean": f"{info.n_control} control characters",
    }
    violations = []
    if info.n_chars < lim.min_chars:
        violations.append(f"min_chars: {info.n_chars} < {lim.min_chars}")
    if lim.max_chars is not None and info.n_chars > lim.max_chars:
        violations.append(f"max_chars: {info.n_chars} > {lim.max_chars}")
    return weighted, _soft(weighted, notes), violations
