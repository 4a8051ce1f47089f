"""A 64-bit DCT perceptual hash (pHash) and the conversions its storage needs.

The hash follows the classic construction (and ``imagehash.phash`` bit for bit
when no JPEG draft is involved): grayscale, resize to 32x32, 2-D DCT-II, keep
the top-left 8x8 block of low frequencies, and set a bit where a coefficient is
above the block's median. Bit 63 (the most significant) is coefficient (0, 0),
bits then run row by row, so the 16-char hex form is the same string
``str(imagehash.phash(img))`` prints.

Hashes are unsigned 64-bit Python ints. Databases and Iceberg have no unsigned
64-bit integer, so :func:`to_signed64` / :func:`from_signed64` map them onto
int64 (two's complement) and back; :func:`hamming` accepts either form.
"""

from __future__ import annotations

import io
import re

import numpy as np
import scipy.fft
from PIL import Image

from app.errors import RecordRejected

__all__ = [
    "HASH_BITS",
    "phash_image",
    "phash_bytes",
    "draft_for_hash",
    "hamming",
    "to_signed64",
    "from_signed64",
    "to_signed",
    "to_unsigned",
    "to_hex",
    "from_hex",
]

HASH_BITS = 64
_MASK64 = (1 << 64) - 1
_SIGN64 = 1 << 63
_HASH_SIZE = 8
_IMG_SIZE = 32
# JPEG decoders can scale by 1/2, 1/4 or 1/8 while decoding. Asking for at least
# 4x the 32 px working size keeps the low frequencies the hash reads intact while
# skipping most of the inverse-DCT work on large photos.
_DRAFT_MIN_SIDE = _IMG_SIZE * 4
_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16B", "I;16L", "I;16N"})
_HEX_RE = re.compile(r"[0-9a-fA-F]{16}")


def phash_image(img: Image.Image) -> int:
    """Return the 64-bit pHash of ``img`` as an unsigned int.

    ``img`` is not modified (conversion and resizing produce new images). Any
    PIL mode works; alpha is dropped by the grayscale conversion.
    """
    if img.mode == "L":
        gray = img
    elif img.mode in _HIGH_DEPTH_MODES:
        # convert("L") clips 16/32-bit samples at 255, turning most such images
        # white (one shared hash). Keep their range as float; the hash is
        # invariant to the scale.
        gray = Image.fromarray(np.asarray(img, dtype=np.float32), mode="F")
    else:
        gray = img.convert("L")
    small = gray.resize((_IMG_SIZE, _IMG_SIZE), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    # Unnormalised DCT-II along both axes, like scipy.fftpack.dct twice.
    coeffs = scipy.fft.dctn(pixels, type=2)[:_HASH_SIZE, :_HASH_SIZE]
    bits = (coeffs > np.median(coeffs)).ravel()
    # packbits is big-endian within each byte, so bits[0] becomes bit 63.
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def phash_bytes(data: bytes | bytearray | memoryview) -> int:
    """Decode an encoded image and return its pHash.

    JPEGs are decoded at a reduced scale (``Image.draft``) when they are much
    larger than the 32 px the hash works at. Undecodable bytes raise
    ``RecordRejected("decode_error", ...)``.
    """
    try:
        with Image.open(io.BytesIO(bytes(data))) as img:
            draft_for_hash(img)
            img.load()
            return phash_image(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise RecordRejected("decode_error", f"cannot decode image for hashing: {exc}") from exc


def draft_for_hash(img: Image.Image) -> None:
    """Ask a not-yet-loaded JPEG to decode at the smallest scale the hash can use.

    A no-op for other formats and for already loaded images. The image's
    ``size`` changes to the reduced size, so read the original size first.
    """
    if img.format == "JPEG" and min(img.size) >= 2 * _DRAFT_MIN_SIDE:
        # "L" makes libjpeg emit only the luma channel: less work, same gray.
        img.draft("L", (_DRAFT_MIN_SIDE, _DRAFT_MIN_SIDE))


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes (signed or unsigned form)."""
    return ((a ^ b) & _MASK64).bit_count()


def to_signed64(h: int) -> int:
    """Map an unsigned 64-bit hash onto int64 (two's complement) for storage."""
    _check_unsigned(h)
    return h - (1 << 64) if h & _SIGN64 else h


def from_signed64(s: int) -> int:
    """Inverse of :func:`to_signed64`."""
    if not -_SIGN64 <= s < _SIGN64:
        raise ValueError(f"{s} is outside the int64 range")
    return s & _MASK64


# Short names for the storage conversions.
to_signed = to_signed64
to_unsigned = from_signed64


def to_hex(h: int) -> str:
    """16 lowercase hex characters, zero-padded (the ``imagehash`` string form)."""
    _check_unsigned(h)
    return f"{h:016x}"


def from_hex(text: str) -> int:
    """Parse a 16-char hex hash (as written by :func:`to_hex`)."""
    # fullmatch rather than int(text, 16) alone: int() also takes "0x", "_" and spaces.
    if not _HEX_RE.fullmatch(text):
        raise ValueError(f"not a 16-character hex hash: {text!r}")
    return int(text, 16)


def _check_unsigned(h: int) -> None:
    if not 0 <= h <= _MASK64:
        raise ValueError(f"{h} is not an unsigned 64-bit hash")
