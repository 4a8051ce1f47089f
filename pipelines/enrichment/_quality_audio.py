"""Audio quality measures: clipping, silence and low signal-to-noise ratio.

Samples are read as float against full scale (int types by their range,
floats as given, 1.0 = full scale); multi-channel clips, shaped
(samples, channels), are mixed down for silence and SNR and checked channel
by channel for clipping. Clips of one sample rate are cut into frames of
``2 ** ceil(log2(25 ms))`` samples (512 at 16 kHz) and transformed together.

* ``clipping``: share of samples inside flat runs (3 or more in a row, same
  sign) at the clip's peak level (within 1e-4 of it), divided by 1 %: a clean
  signal touches its peak for a sample or two, a clipped one stays there.
* ``silence``: share of frames whose RMS is 40 dB below the loud frames (the
  95th percentile frame RMS) or below -60 dBFS.
* ``low_snr``: ``N / (S + N)``, the noise share of the power. Spectra are
  summed into bands of 8 bins. The quietest 5 % of frames (at least 2) show
  the noise floor, since pauses expose it; its broadband level is the median
  over bands of their band power, so a steady tone or a band-limited voice in
  those frames does not count as noise while hiss that fills every band does
  (a factor calibrated on white noise undoes the bias of picking the quietest
  frames). A clip with no frame above -60 dBFS scores 0: it is silence.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from app.errors import InputError

__all__ = ["audio_scores"]

_PEAK_TOLERANCE = 1e-4
_RUN = 3
_CLIP_FULL = 0.01
_FRAME_S = 0.025
_SILENCE_BELOW_LOUD_DB = 40.0
_SILENCE_FLOOR_DBFS = -60.0
_LOUD_PERCENTILE = 95
_DIGITAL_ZERO = 1e-12  # -240 dBFS: keeps log10 finite on all-zero frames
_QUIET_SHARE = 0.05
_BAND_BINS = 8
# The quietest frames of white noise sit below its mean power and the median
# band below the mean band; this factor brings pure noise to a score of 1
# (calibrated at 8-44.1 kHz, 0.5-3 s).
_FLOOR_TO_MEAN = 1.2


def audio_scores(clips: Sequence[tuple[np.ndarray, int]]) -> dict[str, np.ndarray]:
    """Scores for each clip, one float64 array (len(clips),) per issue."""
    n = len(clips)
    clipping = np.zeros(n)
    silence = np.zeros(n)
    low_snr = np.zeros(n)
    by_rate: dict[int, list[int]] = defaultdict(list)
    mono: list[np.ndarray] = []
    for i, clip in enumerate(clips):
        channels, rate = _as_float(clip, i)
        clipping[i] = _clipped_share(channels)
        mono.append(channels.mean(axis=0))
        by_rate[rate].append(i)
    for rate, members in by_rate.items():
        frame = 1 << max(4, math.ceil(math.log2(_FRAME_S * rate)))
        frames, owner = _frames([mono[i] for i in members], frame)
        rms = np.sqrt(np.mean(frames**2, axis=1))
        power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2
        starts = np.searchsorted(owner, np.arange(len(members)))
        ends = np.append(starts[1:], len(owner))
        for j, i in enumerate(members):
            s, e = starts[j], ends[j]
            silence[i], audible = _silent_share(rms[s:e])
            low_snr[i] = _noise_share(power[s:e]) if audible else 0.0
    return {"clipping": np.minimum(1.0, clipping / _CLIP_FULL), "silence": silence, "low_snr": low_snr}


def _as_float(clip: object, index: int) -> tuple[np.ndarray, int]:
    """(channels, samples) float64 in full-scale units, and the sample rate."""
    if not (isinstance(clip, tuple) and len(clip) == 2):
        raise InputError(f"clip {index}: expected a (samples, sample_rate) pair")
    samples, rate = clip
    if not isinstance(samples, np.ndarray):
        raise InputError(f"clip {index}: samples must be a numpy array, got {type(samples).__name__}")
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer) or rate <= 0:
        raise InputError(f"clip {index}: sample_rate must be a positive int, got {rate!r}")
    if samples.ndim not in (1, 2) or samples.shape[0] == 0:
        raise InputError(f"clip {index}: expected (samples,) or (samples, channels), got shape {samples.shape}")
    kind = samples.dtype.kind
    if kind == "i":
        scale = float(np.iinfo(samples.dtype).max) + 1.0
        x = samples.astype(np.float64) / scale
    elif kind == "u":
        half = (float(np.iinfo(samples.dtype).max) + 1.0) / 2.0
        x = (samples.astype(np.float64) - half) / half
    elif kind == "f":
        x = samples.astype(np.float64)
        if not np.isfinite(x).all():
            raise InputError(f"clip {index}: samples contain NaN or infinity")
    else:
        raise InputError(f"clip {index}: unsupported sample type {samples.dtype}")
    channels = x[None, :] if x.ndim == 1 else x.T
    return channels, int(rate)


def _clipped_share(channels: np.ndarray) -> float:
    peak = np.abs(channels).max(axis=1, keepdims=True)
    if not peak.any():
        return 0.0
    level = peak * (1.0 - _PEAK_TOLERANCE)
    hi = channels >= np.where(peak > 0, level, np.inf)
    lo = channels <= -np.where(peak > 0, level, np.inf)
    return float((_in_runs(hi).sum() + _in_runs(lo).sum()) / channels.size)


def _in_runs(at_peak: np.ndarray) -> np.ndarray:
    """Mark samples inside runs of at least ``_RUN`` (3) consecutive Trues, per row."""
    padded = np.pad(at_peak, ((0, 0), (2, 2)))
    c = [padded[:, k : k + at_peak.shape[1]] for k in range(5)]  # offsets -2..+2
    return c[2] & ((c[0] & c[1]) | (c[1] & c[3]) | (c[3] & c[4]))


def _frames(signals: list[np.ndarray], frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping frames of every signal (a short one zero-padded to one frame)."""
    blocks, owner = [], []
    for j, x in enumerate(signals):
        count = max(1, len(x) // frame)
        if len(x) < frame:
            x = np.pad(x, (0, frame - len(x)))
        blocks.append(x[: count * frame].reshape(count, frame))
        owner.append(np.full(count, j))
    return np.concatenate(blocks), np.concatenate(owner)


def _silent_share(rms: np.ndarray) -> tuple[float, bool]:
    """Share of silent frames, and whether any frame is loud enough to judge SNR on."""
    db = 20.0 * np.log10(np.maximum(rms, _DIGITAL_ZERO))
    loud = float(np.percentile(db, _LOUD_PERCENTILE))
    cut = max(_SILENCE_FLOOR_DBFS, loud - _SILENCE_BELOW_LOUD_DB)
    return float(np.mean(db < cut)), loud >= _SILENCE_FLOOR_DBFS


def _noise_share(power: np.ndarray) -> float:
    bands = power[:, 1 : 1 + (power.shape[1] - 1) // _BAND_BINS * _BAND_BINS]
    bands = bands.reshape(power.shape[0], -1, _BAND_BINS).sum(axis=2)
    energy = bands.sum(axis=1)
    total = float(energy.mean())
    if total <= 0.0:
        return 0.0
    quiet = np.argsort(energy)[: max(2, math.ceil(_QUIET_SHARE * len(energy)))]
    floor = bands[quiet].mean(axis=0)
    noise = float(np.median(floor)) * bands.shape[1] * _FLOOR_TO_MEAN
    return min(1.0, noise / total)
