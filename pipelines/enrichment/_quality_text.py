"""Text quality measures: length, repetition and non-printable characters.

Each text is read as an array of code points (UTF-32), so the counts are
numpy reductions rather than Python loops over characters.

* ``too_short``: ``1 - chars / (2 * min_chars)`` with ``chars`` the
  non-whitespace characters; 0.5 exactly at ``min_chars``.
* ``too_long``: ``len / (2 * max_chars)``; 0.5 exactly at ``max_chars``.
* ``repetitive``: share of n-grams that repeat an earlier one: word 3-grams
  when the text has at least 8 words, else (few words: a run of one token,
  or a script written without spaces) character 5-grams. Ordinary prose
  repeats a few per cent of its word 3-grams; boilerplate loops and
  scraping artefacts repeat most of them.
* ``non_printable``: share of characters that no reader can see as text:
  control characters other than tab, newline and carriage return, private-use
  and unassigned code points, lone surrogates (undecodable bytes kept by
  ``surrogateescape``) and U+FFFD, times 10 (1 % scores 0.1).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from app.errors import InputError

__all__ = ["text_scores"]

_WORD = re.compile(r"\w+")
_MIN_WORDS = 8
_WORD_N = 3
_CHAR_N = 5
_NON_PRINTABLE_FULL = 0.1
_BAD_CATEGORIES = frozenset({"Cc", "Co", "Cs", "Cn"})
_ALLOWED_CONTROLS = (0x09, 0x0A, 0x0D)
_REPLACEMENT = 0xFFFD
_PRIVATE_PLANES = 0xF0000
_BMP = 0x10000
_PRINTABLE = 0x41  # "A"


def text_scores(texts: Sequence[str], *, min_chars: int = 20, max_chars: int = 20_000) -> dict[str, np.ndarray]:
    """Scores for each text, one float64 array (len(texts),) per issue."""
    n = len(texts)
    length = np.zeros(n)
    visible = np.zeros(n)
    bad = np.zeros(n)
    repetitive = np.zeros(n)
    table = _bad_bmp()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text {i}: expected str, got {type(text).__name__}")
        cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        length[i] = cp.size
        visible[i] = cp.size - _whitespace(cp)
        astral = cp >= _BMP
        # Astral code points look up a printable stand-in; only the private-use planes count.
        bad[i] = table[np.where(astral, _PRINTABLE, cp)].sum() + (cp >= _PRIVATE_PLANES).sum()
        repetitive[i] = _repeated_share(text, cp)
    with np.errstate(divide="ignore", invalid="ignore"):
        bad_share = np.where(length > 0, bad / np.maximum(length, 1), 0.0)
    return {
        "too_short": np.clip(1.0 - visible / (2.0 * min_chars), 0.0, 1.0),
        "too_long": np.clip(length / (2.0 * max_chars), 0.0, 1.0),
        "repetitive": repetitive,
        "non_printable": np.minimum(1.0, bad_share / _NON_PRINTABLE_FULL),
    }


@functools.cache
def _bad_bmp() -> np.ndarray:
    """Non-printable flags for the Basic Multilingual Plane, built on first use."""
    flags = np.fromiter((unicodedata.category(chr(c)) in _BAD_CATEGORIES for c in range(_BMP)), dtype=bool, count=_BMP)
    flags[list(_ALLOWED_CONTROLS)] = False
    flags[_REPLACEMENT] = True
    return flags


@functools.cache
def _space_bmp() -> np.ndarray:
    return np.fromiter((chr(c).isspace() for c in range(_BMP)), dtype=bool, count=_BMP)


def _whitespace(cp: np.ndarray) -> int:
    return int(_space_bmp()[np.where(cp >= _BMP, _PRINTABLE, cp)].sum())  # astral planes hold no spaces


def _repeated_share(text: str, cp: np.ndarray) -> float:
    words = _WORD.findall(text.lower())
    if len(words) >= _MIN_WORDS:
        _, ids = np.unique(np.array(words), return_inverse=True)
        grams = _gram_keys(ids.astype(np.uint64), _WORD_N)
    elif cp.size >= _CHAR_N + 1:
        grams = _gram_keys(cp.astype(np.uint64), _CHAR_N)
    else:
        return 0.0
    return float(1.0 - np.unique(grams).size / grams.size)


def _gram_keys(ids: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit key per n-gram (a polynomial hash; wrap-around is harmless here)."""
    count = ids.size - n + 1
    key = np.zeros(count, dtype=np.uint64)
    base = np.uint64(1_000_003)
    for k in range(n):
        key = key * base + ids[k : k + count]
    return key
