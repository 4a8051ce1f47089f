"""Audio quality detectors on synthetic recordings with known defects.

Clean clips are harmonic tones with vibrato and speech-like signals (a buzz
plus breath noise through three formant filters, syllables at 3-5 Hz inside
words of 0.2-0.6 s separated by short pauses), at 8-44.1 kHz, recorded over a
quiet noise floor, as float32 or int16. Damaged clips are clean ones driven
into clipping, cut down to a short active stretch in silence, or buried in
white noise at -5..6 dB SNR.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from app.errors import InputError
from pipelines.enrichment import AUDIO_ISSUES, QualityThresholds, score_audio

RATES = (8000, 16000, 22050, 44100)


def _tone(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    t = np.arange(int(sr * dur)) / sr
    vibrato = 1 + 0.01 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    phase = 2 * np.pi * rng.uniform(80, 600) * np.cumsum(vibrato) / sr
    x = sum(rng.uniform(0.2, 1) / k * np.sin(k * phase + rng.uniform(0, 6)) for k in range(1, 6))
    return x * np.minimum(1, np.minimum(t, t[-1] - t) / 0.05)


def _speech(rng: np.random.Generator, sr: int, dur: float) -> np.ndarray:
    n = int(sr * dur)
    t = np.arange(n) / sr
    source = 0.5 * rng.normal(size=n) + signal.sawtooth(2 * np.pi * rng.uniform(90, 220) * t)
    out = np.zeros(n)
    for fc in (rng.uniform(300, 800), rng.uniform(900, 2200), rng.uniform(2300, 3200)):
        b, a = signal.butter(2, [fc * 0.8 / (sr / 2), min(0.99, fc * 1.2 / (sr / 2))], "band")
        out += signal.lfilter(b, a, source)
    syllables = 0.3 + 0.7 * np.abs(np.sin(np.pi * rng.uniform(3, 5) * t))
    words = np.zeros(n)
    pos = int(rng.uniform(0.0, 0.1) * sr)
    while pos < n:
        length = int(rng.uniform(0.2, 0.6) * sr)
        words[pos : pos + length] = 1.0
        pos += length + int(rng.uniform(0.04, 0.12) * sr)
    k = int(0.01 * sr)
    return out * syllables * np.convolve(words, np.ones(k) / k, "same")


def _clean(rng: np.random.Generator, i: int) -> tuple[np.ndarray, int]:
    sr = int(rng.choice(RATES))
    dur = rng.uniform(0.8, 2.0)
    x = _tone(rng, sr, dur) if i % 2 == 0 else _speech(rng, sr, dur)
    x = x / np.abs(x).max() * rng.uniform(0.2, 0.9)
    return x + rng.normal(0, 10 ** (-rng.uniform(55, 70) / 20), x.shape), sr


def _damage(rng: np.random.Generator, x: np.ndarray, issue: str) -> np.ndarray:
    if issue == "clipping":  # 2.5-8x too much gain, sometimes scaled back after the clip
        return np.clip(x / np.abs(x).max() * rng.uniform(2.5, 8), -1, 1) * rng.choice([1.0, 0.9])
    if issue == "silence":  # 10-40 % of the clip kept (its loudest stretch), the rest near-silent
        keep = int(len(x) * rng.uniform(0.1, 0.4))
        energy = np.concatenate([[0.0], np.cumsum(x**2)])
        start = int(np.argmax(energy[keep:] - energy[:-keep]))
        y = np.zeros_like(x)
        y[start : start + keep] = x[start : start + keep]
        return y + rng.normal(0, 10 ** (-75 / 20), x.shape)
    if issue == "low_snr":
        snr_db = rng.uniform(-5, 6)
        y = x + rng.normal(0, np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10)), x.shape)
        return y / max(1.0, np.abs(y).max())
    raise AssertionError(issue)


def _store(x: np.ndarray, i: int) -> np.ndarray:
    return np.clip(np.rint(x * 32767), -32768, 32767).astype(np.int16) if i % 3 == 0 else x.astype(np.float32)


def _mixed_set(seed: int = 7, n_clean: int = 40, n_each: int = 15) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
    rng = np.random.default_rng(seed)
    clips, labels = [], []
    for i in range(n_clean):
        x, sr = _clean(rng, i)
        clips.append((_store(x, i), sr))
        labels.append("clean")
    for issue in AUDIO_ISSUES:
        for j in range(n_each):
            x, sr = _clean(rng, j)
            clips.append((_store(_damage(rng, x, issue), j), sr))
            labels.append(issue)
    return clips, np.array(labels)


@pytest.fixture(scope="module")
def scored():
    clips, labels = _mixed_set()
    return clips, labels, score_audio(clips)


@pytest.mark.parametrize("issue", AUDIO_ISSUES)
def test_each_audio_detector_has_precision_and_recall_of_at_least_0_9(scored, issue: str) -> None:
    _, labels, reports = scored
    flagged = np.array([issue in r.issues for r in reports])
    truth = labels == issue
    tp = int((flagged & truth).sum())
    precision, recall = tp / max(1, int(flagged.sum())), tp / int(truth.sum())
    assert precision >= 0.9, f"{issue}: precision {precision:.2f}, also flags {sorted(set(labels[flagged & ~truth]))}"
    assert recall >= 0.9, f"{issue}: recall {recall:.2f}"


def test_clean_clips_are_not_flagged(scored) -> None:
    _, labels, reports = scored
    assert [r.issues for r, lab in zip(reports, labels, strict=True) if lab == "clean" and r.issues] == []


def test_white_noise_alone_is_all_noise_and_digital_silence_is_all_silence() -> None:
    rng = np.random.default_rng(1)
    hiss, zeros = score_audio([(rng.normal(0, 0.1, 16000), 16000), (np.zeros(16000, np.int16), 16000)])
    assert hiss.scores["low_snr"] > 0.8 and "low_snr" in hiss.issues
    assert zeros.scores == {"clipping": 0.0, "silence": 1.0, "low_snr": 0.0}
    assert zeros.issues == ("silence",)


def test_a_steady_tone_is_not_noise_and_a_full_scale_sine_is_not_clipping() -> None:
    t = np.arange(22050) / 22050
    sine = np.sin(2 * np.pi * 441 * t)  # touches +-1.0 exactly, one sample per peak
    (rep,) = score_audio([(sine, 22050)])
    assert rep.issues == ()
    assert rep.scores["clipping"] == 0.0 and rep.scores["low_snr"] < 0.01


def test_int_types_and_stereo_are_read_against_their_full_scale() -> None:
    t = np.arange(16000) / 16000
    x = np.clip(3 * np.sin(2 * np.pi * 200 * t), -1, 1)
    as_u8 = np.rint(x * 127 + 128).astype(np.uint8)
    stereo = np.stack([x * 0.5, x], axis=1).astype(np.float32)  # only the right channel clips
    u8, st = score_audio([(as_u8, 16000), (stereo, 16000)])
    assert "clipping" in u8.issues and "clipping" in st.issues


def test_thresholds_are_respected() -> None:
    clips, labels = _mixed_set(seed=3, n_clean=0, n_each=3)
    lenient = QualityThresholds(clipping=1.0, silence=1.0, low_snr=1.0)
    assert all(r.issues == () for r in score_audio(clips, lenient))


@pytest.mark.parametrize(
    ("clip", "message"),
    [
        ((np.zeros(10), 0), "sample_rate"),
        ((np.zeros(10), 16000.0), "sample_rate"),
        ((np.zeros((2, 2, 2)), 16000), "shape"),
        ((np.array([np.nan, 0.0]), 16000), "NaN"),
        ((np.array(["a"]), 16000), "sample type"),
        (np.zeros(10), "pair"),
    ],
)
def test_bad_clips_raise_one_clear_input_error(clip, message: str) -> None:
    with pytest.raises(InputError, match=message):
        score_audio([clip])


def test_very_short_clips_still_score() -> None:
    (rep,) = score_audio([(np.array([0.1, -0.2, 0.3], np.float32), 16000)])
    assert set(rep.scores) == set(AUDIO_ISSUES)
