"""Stored bytes to what the scorers and models take: images as uint8 arrays,
audio as float samples with their rate, text as str."""

from __future__ import annotations

import io
import wave

import numpy as np
from PIL import Image, UnidentifiedImageError

from app.errors import RecordRejected

__all__ = ["decode_image_array", "decode_wav", "decode_utf8", "caption_of"]

_CAPTION_KEYS = ("caption", "description", "transcript", "text")


def decode_image_array(data: bytes) -> np.ndarray:
    """uint8 ``HxW`` (gray), ``HxWx3`` or ``HxWx4``."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in ("L", "RGB", "RGBA"):
                return np.asarray(img, dtype=np.uint8).copy()
            if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                a = np.asarray(img, dtype=np.float64)
                lo, hi = float(a.min()), float(a.max())
                return ((a - lo) / max(hi - lo, 1e-9) * 255).round().astype(np.uint8)
            if img.mode in ("LA", "1"):
                return np.asarray(img.convert("L"), dtype=np.uint8).copy()
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise RecordRejected("decode_error", f"cannot decode image: {exc}") from exc


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError) as exc:
        raise RecordRejected("decode_error", f"cannot decode WAV: {exc}") from exc
    if width == 1:
        x = (np.frombuffer(frames, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 3:
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        x = ints.astype(np.float32) / float(1 << 23)
    elif width == 4:
        x = np.frombuffer(frames, dtype="<i4").astype(np.float32) / float(1 << 31)
    else:
        raise RecordRejected("decode_error", f"unsupported WAV sample width {width}")
    usable = (x.size // channels) * channels
    mono = x[:usable].reshape(-1, channels).mean(axis=1) if channels > 1 else x[:usable]
    return np.ascontiguousarray(mono, dtype=np.float32), rate


def decode_utf8(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def caption_of(meta: dict[str, object]) -> str | None:
    """A caption carried in an image's or a clip's metadata, if any."""
    for key in _CAPTION_KEYS:
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
