"""An in-memory near-duplicate index over 64-bit hashes (multi-index hashing).

Each hash is split into ``m = 4`` chunks of 16 bits, and each chunk position
has its own table ``chunk value -> entry positions``. If two hashes differ in
at most ``r`` bits, the pigeonhole principle says at least one of the four
chunks differs in at most ``floor(r / 4)`` bits. A query therefore looks up,
in every table, each chunk value within ``floor(r / 4)`` bit flips of the
query's chunk (``P = 4 * sum(C(16, i) for i <= floor(r / 4))`` buckets: 4 for
r <= 3, 68 for r <= 7, 548 for r <= 11), and verifies the candidates found
there with an exact popcount. No true match is missed.

Layout: a table is not a Python dict of lists but the same mapping packed
into numpy arrays (CSR: ``offsets[chunk] .. offsets[chunk + 1]`` delimit the
bucket's positions in ``order``), so all ``P`` buckets are gathered by a
handful of vectorised calls. Measured on 20k-160k entries, dict-of-lists
probing cost about as much as a brute-force numpy scan of every entry: the
per-bucket Python work and cache misses ate the gain. Entries added since the
last (re)build sit in a small tail that queries scan linearly; the tables are
rebuilt when the tail outgrows ``max(8192, n / 32)``, in O(n) (radix sort of
16-bit chunks), which amortises to a few microseconds per add.

Cost: a probe touches about ``P * n / 2**16`` candidates (n/1000 for r <= 7)
plus the tail; the linear scan touches all n with a smaller per-entry cost.
``strategy="auto"`` compares the two with a measured cost model per query.
Results never depend on the strategy.

Persistence is the caller's job: load stored rows with :meth:`add_many`.
Not thread-safe; guard it with a lock if threads share one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["NearDupIndex", "IndexStats", "Strategy", "popcount64"]

Strategy = Literal["auto", "probe", "scan"]

_CHUNKS = 4
_CHUNK_BITS = 16
_BUCKETS = 1 << _CHUNK_BITS
_MASK64 = (1 << 64) - 1
_TAIL_MIN = 8192
_TAIL_FRACTION = 32
# Query cost model in microseconds, fitted on CPython 3.11 + numpy 2 on the
# dev machines for n = 1k..1M and r = 2..14 (only the ratios matter). A probe
# pays a fixed cost for its ~20 numpy calls, a little per bucket looked up and
# per candidate gathered and verified, and scans the tail. A scan pays a
# smaller fixed cost and a tiny per-entry cost on every entry.
_COST_PROBE_FIXED = 14.0
_COST_PER_BUCKET = 0.01
_COST_PER_CANDIDATE = 0.018
_COST_SCAN_FIXED = 5.0
_COST_SCAN_PER_ENTRY = 0.00075
_SHIFTS = np.arange(_CHUNKS, dtype=np.uint64) * np.uint64(_CHUNK_BITS)
# Row i of the flattened (tables x (buckets + 1)) offsets array starts here.
_TABLE_ROW = (np.arange(_CHUNKS, dtype=np.int64) * (_BUCKETS + 1))[:, None]

U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]
_EMPTY: I64Array = np.zeros(0, dtype=np.int64)


@dataclass
class IndexStats:
    """Counters for metrics and for checking that queries stay sub-linear."""

    probe_queries: int = 0
    scan_queries: int = 0
    # Entries whose full hash a probe query compared: bucket candidates + tail.
    probe_candidates: int = 0
    rebuilds: int = 0


@cache
def _flip_masks(max_flips: int) -> I64Array:
    """Every 16-bit mask with at most ``max_flips`` bits set, fewest bits first."""
    masks: list[int] = []
    for k in range(min(max_flips, _CHUNK_BITS) + 1):
        for bits in itertools.combinations(range(_CHUNK_BITS), k):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.int64)


def _n_masks(max_flips: int) -> int:
    """len(_flip_masks(max_flips)) without building the masks."""
    return sum(math.comb(_CHUNK_BITS, k) for k in range(min(max_flips, _CHUNK_BITS) + 1))


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount64(values: U64Array) -> npt.NDArray[np.uint8]:
    """Vectorised popcount of a uint64 array (numpy >= 2 has it natively)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)  # type: ignore[no-any-return]
    as_bytes = np.ascontiguousarray(values).view(np.uint8).reshape(-1, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=1, dtype=np.uint8)


def _normalise(h: int) -> int:
    """Accept the unsigned form and the signed int64 storage form."""
    h = int(h)
    if not -(1 << 63) <= h <= _MASK64:
        raise ValueError(f"{h} is not a 64-bit hash")
    return h & _MASK64


def _check_radius(max_distance: int) -> int:
    r = int(max_distance)
    if not 0 <= r <= 64:
        raise ValueError(f"max_distance must be within 0..64, got {max_distance}")
    return r


class NearDupIndex:
    """Find stored 64-bit hashes within a Hamming radius of a query hash.

    Entries are ``(key, hash)`` pairs; keys need not be unique (the same key
    added twice is two entries). Hashes may be given unsigned or as signed
    int64, as stored in a database.
    """

    def __init__(self, *, strategy: Strategy = "auto") -> None:
        if strategy not in ("auto", "probe", "scan"):
            raise ValueError(f"unknown strategy {strategy!r}")
        self.strategy: Strategy = strategy
        self.stats = IndexStats()
        self._keys: list[str] = []
        self._hashes: U64Array = np.zeros(1024, dtype=np.uint64)
        self._n = 0
        # Tables cover entries [0, _frozen); later entries are the scanned tail.
        self._frozen = 0
        self._offsets: I64Array = np.zeros(_CHUNKS * (_BUCKETS + 1), dtype=np.int64)
        self._order: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"NearDupIndex(entries={self._n}, strategy={self.strategy!r})"

    # ----------------------------------------------------------------- adding
    def add(self, key: str, h: int) -> None:
        """Add one entry; it is found by every later query."""
        value = _normalise(h)
        self._reserve(self._n + 1)
        self._hashes[self._n] = value
        self._keys.append(key)
        self._n += 1
        self._maybe_rebuild()

    def add_many(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Add many ``(key, hash)`` entries, in order (bulk load from storage)."""
        items = list(pairs)
        if not items:
            return
        values = np.array([_normalise(h) for _, h in items], dtype=np.uint64)
        start = self._n
        self._reserve(start + len(items))
        self._hashes[start : start + len(items)] = values
        self._keys.extend(key for key, _ in items)
        self._n += len(items)
        self._maybe_rebuild()

    def compact(self) -> None:
        """Pack the tail into the tables now (e.g. after a bulk load of fewer
        than 8192 rows, which would otherwise stay in the scanned tail)."""
        if self._frozen < self._n:
            self._rebuild()

    def _reserve(self, size: int) -> None:
        if size > len(self._hashes):
            grown = np.zeros(max(size, 2 * len(self._hashes)), dtype=np.uint64)
            grown[: self._n] = self._hashes[: self._n]
            self._hashes = grown

    def _maybe_rebuild(self) -> None:
        if self._n - self._frozen > max(_TAIL_MIN, self._n // _TAIL_FRACTION):
            self._rebuild()

    def _rebuild(self) -> None:
        """Pack every entry into the chunk tables (CSR per chunk position)."""
        n = self._n
        if n >= 2**31:
            raise OverflowError("NearDupIndex holds at most 2**31 - 1 entries")
        hashes = self._hashes[:n]
        order = np.empty((_CHUNKS, n), dtype=np.int32)
        offsets = np.zeros((_CHUNKS, _BUCKETS + 1), dtype=np.int64)
        for i in range(_CHUNKS):
            chunk = ((hashes >> np.uint64(_CHUNK_BITS * i)) & np.uint64(_BUCKETS - 1)).astype(np.uint16)
            order[i] = np.argsort(chunk, kind="stable")  # radix sort for uint16: O(n)
            np.cumsum(np.bincount(chunk, minlength=_BUCKETS), out=offsets[i, 1:])
        # Offsets point straight into the flattened order array: table i's
        # bucket c is order[offsets[i, c] : offsets[i, c + 1]].
        offsets += np.arange(_CHUNKS, dtype=np.int64)[:, None] * n
        self._order = order.ravel()
        self._offsets = offsets.ravel()
        self._frozen = n
        self.stats.rebuilds += 1

    # --------------------------------------------------------------- querying
    def query(self, h: int, max_distance: int) -> list[tuple[str, int]]:
        """Every entry within ``max_distance`` bits of ``h`` as ``(key, distance)``,
        nearest first, ties in insertion order."""
        value = _normalise(h)
        r = _check_radius(max_distance)
        if self._n == 0:
            return []
        flips = r // _CHUNKS
        if self._should_probe(flips):
            positions, distances = self._probe(value, r, flips)
        else:
            self.stats.scan_queries += 1
            positions, distances = self._scan(value, r)
        if positions.size == 0:
            return []
        # positions ascend, so a stable sort on distance keeps insertion order for ties.
        order = np.argsort(distances, kind="stable")
        keys = self._keys
        return [(keys[p], d) for p, d in zip(positions[order].tolist(), distances[order].tolist(), strict=True)]

    def nearest(self, h: int, max_distance: int) -> tuple[str, int] | None:
        """The closest entry within ``max_distance`` (earliest on ties), or None."""
        found = self.query(h, max_distance)
        return found[0] if found else None

    def _should_probe(self, flips: int) -> bool:
        if self.strategy != "auto":
            return self.strategy == "probe"
        tail = self._n - self._frozen
        buckets = _CHUNKS * _n_masks(flips)
        candidates = buckets * self._frozen / _BUCKETS  # uniform hashes; real ones are lumpier
        probe = (
            _COST_PROBE_FIXED
            + _COST_PER_BUCKET * buckets
            + _COST_PER_CANDIDATE * candidates
            + _COST_SCAN_PER_ENTRY * tail
        )
        return probe < _COST_SCAN_FIXED + _COST_SCAN_PER_ENTRY * self._n

    def _probe(self, value: int, r: int, flips: int) -> tuple[I64Array, I64Array]:
        self.stats.probe_queries += 1
        parts: list[tuple[I64Array, I64Array]] = []
        if self._frozen:
            candidates = self._gather(value, flips)
            self.stats.probe_candidates += int(candidates.size)
            distances = popcount64(self._hashes[candidates] ^ np.uint64(value))
            keep = np.flatnonzero(distances <= r)
            if keep.size:
                # An entry sits in all four tables; keep each position once, ascending.
                positions, first = np.unique(candidates[keep], return_index=True)
                parts.append((positions, distances[keep][first].astype(np.int64)))
        if self._frozen < self._n:
            self.stats.probe_candidates += self._n - self._frozen
            parts.append(self._scan(value, r, self._frozen))
        if not parts:
            return _EMPTY, _EMPTY
        if len(parts) == 1:
            return parts[0]
        # Table hits all precede tail hits, so the concatenation stays ascending.
        return np.concatenate([parts[0][0], parts[1][0]]), np.concatenate([parts[0][1], parts[1][1]])

    def _gather(self, value: int, flips: int) -> I64Array:
        """Positions (unordered, repeated across tables) in every bucket within
        ``flips`` bit flips of the query's chunk, in all four tables."""
        chunks = ((np.uint64(value) >> _SHIFTS) & np.uint64(_BUCKETS - 1)).astype(np.int64)
        keys = ((chunks[:, None] ^ _flip_masks(flips)[None, :]) + _TABLE_ROW).ravel()
        starts = self._offsets[keys]
        lengths = self._offsets[keys + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return _EMPTY
        # Expand each [start, start + length) run into indices without a Python loop.
        idx = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
        return self._order[idx].astype(np.int64)

    def _scan(self, value: int, r: int, start: int = 0) -> tuple[I64Array, I64Array]:
        """Linear scan of entries ``[start, n)``."""
        distances = popcount64(self._hashes[start : self._n] ^ np.uint64(value))
        keep = np.flatnonzero(distances <= r)
        return keep + start, distances[keep].astype(np.int64)
