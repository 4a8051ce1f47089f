"""Modality detection and decode checks for ingested bytes.

Every failure raises ``RecordRejected(reason, detail)`` with one of these
reasons, which become quarantine reasons:

* ``empty_file``: zero bytes, or a WAV with no audio frames.
* ``unsupported_format``: a format we recognise but do not ingest (GIF, MP3,
  float WAV...), or a file we cannot place in any modality.
* ``decode_error``: claims a supported format but does not parse or load
  completely (truncated JPEG/PNG/WAV, garbage behind a known extension).
* ``not_utf8``: text that is not valid UTF-8.
"""

from __future__ import annotations

import io
import re
import struct
import wave
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
from PIL import Image

from app.errors import RecordRejected
from pipelines.runtime._records import Modality

from ._phash import draft_for_hash, phash_image

__all__ = [
    "ImageInfo",
    "AudioInfo",
    "TextInfo",
    "DecodedInfo",
    "detect_modality",
    "decode_image",
    "decode_audio",
    "decode_text",
    "decode_record",
]

_IMAGE_EXT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG"}
_AUDIO_EXT = {".wav", ".wave"}
_TEXT_EXT = {".txt", ".text"}
# Formats people will send that we knowingly do not ingest.
_UNSUPPORTED_EXT = {
    ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif", ".ico", ".svg",
    ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".aif",
    ".mp4", ".mov", ".avi", ".mkv", ".webm",
    ".pdf", ".doc", ".docx", ".zip", ".gz", ".tar", ".parquet",
}  # fmt: skip
# (magic prefix, offset, name) for formats recognised only to be refused.
_UNSUPPORTED_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"WEBP", 8, "WebP"),
    (b"ftyp", 4, "ISO media (HEIC/MP4/M4A)"),
    (b"ID3", 0, "MP3"),
    (b"fLaC", 0, "FLAC"),
    (b"OggS", 0, "Ogg"),
    (b"%PDF", 0, "PDF"),
    (b"PK\x03\x04", 0, "ZIP"),
    (b"\x1f\x8b", 0, "gzip"),
)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# C0 controls other than tab/newline/carriage return, plus DEL: a sign of binary junk.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str
    format: str  # "PNG" or "JPEG"
    n_bytes: int
    # Set when decode_image(..., with_phash=True): hashing reuses the decode.
    phash: int | None = None

    modality: Modality = field(default="image", init=False)


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float
    sample_rate: int
    channels: int
    sample_width: int  # bytes per sample
    n_frames: int
    n_bytes: int
    # Largest absolute sample as a fraction of full scale (0 = digital silence).
    peak: float

    modality: Modality = field(default="audio", init=False)


@dataclass(frozen=True)
class TextInfo:
    n_chars: int
    n_lines: int
    n_bytes: int
    n_nonspace: int  # characters that are not whitespace
    n_control: int  # control characters other than \t \n \r

    modality: Modality = field(default="text", init=False)


DecodedInfo = ImageInfo | AudioInfo | TextInfo


def _sniff_unsupported(data: bytes) -> str | None:
    for magic, offset, name in _UNSUPPORTED_MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return name
    return None


def _is_wav(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def detect_modality(data: bytes, filename: str | None = None) -> Modality:
    """Which pipeline branch handles these bytes.

    The extension decides when it is one we know (so a corrupt ``.jpg`` is an
    image that fails to decode, not an unknown blob); otherwise magic bytes
    decide, and any other valid UTF-8 without NUL bytes (``.csv``, ``.json``,
    no extension) is text.
    """
    if not data:
        raise RecordRejected("empty_file", "0 bytes")
    ext = PurePath(filename).suffix.lower() if filename else ""
    if ext in _IMAGE_EXT:
        return "image"
    if ext in _AUDIO_EXT:
        return "audio"
    if ext in _TEXT_EXT:
        return "text"
    if ext in _UNSUPPORTED_EXT:
        raise RecordRejected("unsupported_format", f"extension {ext!r} is not ingested")
    if data.startswith(_PNG_MAGIC) or data.startswith(_JPEG_MAGIC):
        return "image"
    if _is_wav(data):
        return "audio"
    name = _sniff_unsupported(data)
    if name is not None:
        raise RecordRejected("unsupported_format", f"{name} content is not ingested")
    if b"\x00" not in data[:4096]:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text"
    what = f"extension {ext!r}" if ext else "no extension"
    raise RecordRejected("unsupported_format", f"unrecognised content ({what})")


def decode_image(data: bytes, *, with_phash: bool = False) -> ImageInfo:
    """Open and fully decode a PNG or JPEG.

    ``with_phash=True`` also hashes it from the same decode; large JPEGs are
    then decoded at a reduced scale, which still reads (and checks) every byte
    of the compressed stream.
    """
    if not data:
        raise RecordRejected("empty_file", "0 bytes")
    if not (data.startswith(_PNG_MAGIC) or data.startswith(_JPEG_MAGIC)):
        name = _sniff_unsupported(data)
        if name is not None:
            raise RecordRejected("unsupported_format", f"{name} images are not ingested")
        raise RecordRejected("decode_error", f"not a PNG or JPEG (starts {data[:8]!r})")
    # Images over twice PIL's MAX_IMAGE_PIXELS raise DecompressionBombError
    # (caught below); between 1x and 2x PIL only warns, which we leave alone
    # because warnings.catch_warnings() is not thread-safe.
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG")) as img:
            width, height = img.size
            mode, fmt = img.mode, str(img.format)
            if with_phash:
                draft_for_hash(img)
            # load() decodes every pixel: truncation and corrupt data surface here.
            img.load()
            h = phash_image(img) if with_phash else None
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise RecordRejected("decode_error", f"image does not decode: {exc}") from exc
    if width < 1 or height < 1:
        raise RecordRejected("decode_error", f"image has no pixels ({width}x{height})")
    return ImageInfo(width, height, mode, fmt, len(data), h)


def decode_audio(data: bytes) -> AudioInfo:
    """Parse a PCM WAV with the stdlib ``wave`` module and read all its frames."""
    if not data:
        raise RecordRejected("empty_file", "0 bytes")
    if not _is_wav(data):
        name = _sniff_unsupported(data)
        if name is not None:
            raise RecordRejected("unsupported_format", f"{name} audio is not ingested")
        raise RecordRejected("decode_error", f"not a RIFF/WAVE file (starts {data[:12]!r})")
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            n_frames = wav.getnframes()
            frames = wav.readframes(n_frames)
    except wave.Error as exc:
        # The stdlib reads only integer PCM; other codecs are refused, not corrupt.
        if "unknown format" in str(exc):
            raise RecordRejected("unsupported_format", f"WAV codec not ingested: {exc}") from exc
        raise RecordRejected("decode_error", f"WAV header does not parse: {exc}") from exc
    except (EOFError, ValueError, OverflowError, struct.error) as exc:
        raise RecordRejected("decode_error", f"WAV header does not parse: {exc}") from exc
    if channels < 1 or width < 1 or rate < 1:
        raise RecordRejected(
            "decode_error", f"impossible WAV format: {channels} ch, {width} B, {rate} Hz"
        )
    expected = n_frames * channels * width
    # The header promises n_frames; a cut-off file delivers fewer bytes.
    if len(frames) < expected:
        got = len(frames) // (channels * width)
        raise RecordRejected("decode_error", f"WAV truncated: {got} of {n_frames} frames present")
    if n_frames == 0:
        raise RecordRejected("empty_file", "WAV has no audio frames")
    return AudioInfo(
        duration_s=n_frames / rate,
        sample_rate=rate,
        channels=channels,
        sample_width=width,
        n_frames=n_frames,
        n_bytes=len(data),
        peak=_peak(frames, width),
    )


def _peak(frames: bytes, width: int) -> float:
    """Max |sample| / full scale for little-endian PCM of 1-4 bytes."""
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        samples = np.frombuffer(frames, dtype=np.uint8).astype(np.int32) - 128
        full = 128
    elif width == 3:  # no numpy dtype: widen to int32 with the sign in the top byte
        raw = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        padded = np.zeros((raw.shape[0], 4), dtype=np.uint8)
        padded[:, 1:] = raw
        samples = padded.view("<i4").ravel() >> 8
        full = 1 << 23
    else:
        samples = np.frombuffer(frames, dtype=f"<i{width}")
        full = 1 << (8 * width - 1)
    if samples.size == 0:
        return 0.0
    return float(min(1.0, np.abs(samples.astype(np.int64)).max() / full))


def decode_text(data: bytes) -> TextInfo:
    """Strict UTF-8 (a leading BOM is allowed and not counted)."""
    if not data:
        raise RecordRejected("empty_file", "0 bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordRejected(
            "not_utf8", f"invalid UTF-8 at byte {exc.start}: {data[exc.start : exc.end]!r}"
        ) from exc
    # Like `wc -l`, plus a final line without a newline.
    n_lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    n_nonspace = sum(map(len, text.split()))
    return TextInfo(
        n_chars=len(text),
        n_lines=n_lines,
        n_bytes=len(data),
        n_nonspace=n_nonspace,
        n_control=len(_CONTROL_RE.findall(text)),
    )


def decode_record(
    data: bytes,
    modality: Modality | None = None,
    *,
    filename: str | None = None,
    with_phash: bool = True,
) -> DecodedInfo:
    """Run the decode check for ``modality`` (detected from ``filename`` and the
    bytes when None). Images get their pHash from the same decode unless
    ``with_phash=False``."""
    if modality is None:
        modality = detect_modality(data, filename)
    if modality == "image":
        return decode_image(data, with_phash=with_phash)
    if modality == "audio":
        return decode_audio(data)
    if modality == "text":
        return decode_text(data)
    raise RecordRejected("unsupported_format", f"unknown modality {modality!r}")
