"""NearDupIndex against a brute-force scan, for every strategy and radius."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ingestion import NearDupIndex, hamming, to_signed64

MASK = 2**64 - 1


def brute_force(entries: list[tuple[str, int]], h: int, r: int) -> list[tuple[str, int]]:
    hits = [(hamming(v, h), pos, key) for pos, (key, v) in enumerate(entries)]
    return [(key, d) for d, _, key in sorted(hits) if d <= r]


def flip(h: int, bits: set[int]) -> int:
    for b in bits:
        h ^= 1 << b
    return h


@st.composite
def clustered_hashes(draw: st.DrawFn) -> list[int]:
    """Random base hashes plus variants a few bits away (random hashes alone
    almost never fall within a small radius, which would test nothing)."""
    out = []
    for base in draw(st.lists(st.integers(0, MASK), min_size=1, max_size=25)):
        out.append(base)
        for k in draw(st.lists(st.integers(0, 12), max_size=4)):
            out.append(flip(base, draw(st.sets(st.integers(0, 63), min_size=k, max_size=k))))
    return out


@st.composite
def queries(draw: st.DrawFn, stored: list[int]) -> list[int]:
    picked = draw(st.lists(st.sampled_from(stored), min_size=1, max_size=5))
    moved = [flip(h, draw(st.sets(st.integers(0, 63), max_size=10))) for h in picked]
    return moved + [draw(st.integers(0, MASK))]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), stored=clustered_hashes(), radius=st.integers(0, 20))
def test_query_equals_brute_force_for_every_strategy(
    data: st.DataObject, stored: list[int], radius: int
) -> None:
    entries = [(f"k{i}", h) for i, h in enumerate(stored)]
    indexes = [NearDupIndex(strategy=s) for s in ("auto", "probe", "scan", "probe")]
    for ix in indexes:
        # Half packed into the chunk tables, half in the scanned tail...
        ix.add_many(entries[: len(entries) // 2])
        ix.compact()
        for key, h in entries[len(entries) // 2 :]:
            ix.add(key, h)
        assert len(ix) == len(entries)
    indexes[-1].compact()  # ...and one with everything in the tables.
    for q in data.draw(queries(stored)):
        expected = brute_force(entries, q, radius)
        for ix in indexes:
            assert ix.query(q, radius) == expected, ix.strategy
            assert ix.nearest(q, radius) == (expected[0] if expected else None)


@pytest.mark.parametrize("radius", [0, 3, 4, 7, 8, 15, 31, 32, 63, 64])
def test_probe_is_exact_at_chunk_boundaries_and_extreme_radii(radius: int) -> None:
    rng = random.Random(radius)
    entries = []
    for i in range(60):
        base = rng.getrandbits(64)
        entries.append((f"b{i}", base))
        # Exactly `radius` flips, spread so that all 4 chunks lose bits evenly.
        entries.append((f"v{i}", flip(base, set(rng.sample(range(64), radius)))))
    probe, scan = NearDupIndex(strategy="probe"), NearDupIndex(strategy="scan")
    probe.add_many(entries)
    probe.compact()
    scan.add_many(entries)
    for i in range(0, 60, 12 if radius > 15 else 3):  # big radii probe 2**16 keys per table
        q = entries[2 * i][1]
        expected = brute_force(entries, q, radius)
        assert (f"v{i}", radius) in expected
        assert probe.query(q, radius) == expected == scan.query(q, radius)


@pytest.mark.parametrize("packed", [0, 3, 6])  # entries packed into tables; the rest is tail
@pytest.mark.parametrize("strategy", ["probe", "scan"])
def test_results_sorted_by_distance_then_insertion_order(packed: int, strategy: str) -> None:
    entries = [
        ("far", 0b111),
        ("exact-2nd", 0),  # same distance as "exact-4th": insertion order decides
        ("one", 0b1),
        ("exact-4th", 0),
        ("dup-key", 0b10),
        ("dup-key", 0b10),
    ]
    ix = NearDupIndex(strategy=strategy)  # type: ignore[arg-type]
    ix.add_many(entries[:packed])
    ix.compact()
    for key, h in entries[packed:]:
        ix.add(key, h)
    assert ix.query(0, 3) == [
        ("exact-2nd", 0),
        ("exact-4th", 0),
        ("one", 1),
        ("dup-key", 1),
        ("dup-key", 1),
        ("far", 3),
    ]
    assert ix.nearest(0, 3) == ("exact-2nd", 0)
    assert ix.query(0b111, 0) == [("far", 0)]


def test_signed_storage_form_is_accepted_and_means_the_same_hash() -> None:
    h = 0xF0F0_0000_1234_ABCD
    ix = NearDupIndex()
    ix.add("a", to_signed64(h))  # as read back from a BIGINT column
    assert ix.query(h, 0) == [("a", 0)]
    assert ix.query(to_signed64(h ^ 1), 1) == [("a", 1)]


def test_empty_index_and_invalid_arguments() -> None:
    ix = NearDupIndex()
    assert len(ix) == 0
    assert ix.query(123, 64) == []
    assert ix.nearest(123, 6) is None
    ix.add_many([])
    assert len(ix) == 0
    with pytest.raises(ValueError):
        ix.query(1, 65)
    with pytest.raises(ValueError):
        ix.query(1, -1)
    with pytest.raises(ValueError):
        ix.add("x", 2**64)
    with pytest.raises(ValueError):
        ix.add("x", -(2**63) - 1)
    with pytest.raises(ValueError):
        NearDupIndex(strategy="fast")  # type: ignore[arg-type]


def test_radius_64_returns_everything_in_insertion_order_by_distance() -> None:
    rng = random.Random(1)
    entries = [(str(i), rng.getrandbits(64)) for i in range(500)]
    ix = NearDupIndex()
    ix.add_many(entries)
    got = ix.query(0, 64)
    assert len(got) == 500
    assert got == brute_force(entries, 0, 64)


def test_probing_touches_a_small_fraction_of_a_large_index() -> None:
    """The point of multi-index hashing: a radius-6 query verifies ~n/1000
    candidates, not n, and still finds planted near-duplicates."""
    rng = random.Random(7)
    n = 20_000
    entries = [(f"r{i}", rng.getrandbits(64)) for i in range(n)]
    planted = {}
    for i in range(0, n, 100):
        q = flip(entries[i][1], set(rng.sample(range(64), 6)))
        planted[q] = entries[i][0]
    ix = NearDupIndex(strategy="probe")
    ix.add_many(entries)
    assert ix.stats.rebuilds == 1  # a bulk load beyond the tail limit packs itself
    for q, key in planted.items():
        assert (key, 6) in ix.query(q, 6)
    per_query = ix.stats.probe_candidates / ix.stats.probe_queries
    assert ix.stats.probe_queries == len(planted) and ix.stats.scan_queries == 0
    assert per_query < n / 200


def test_auto_probes_small_radii_and_scans_large_ones() -> None:
    rng = random.Random(3)
    ix = NearDupIndex()
    ix.add_many((str(i), rng.getrandbits(64)) for i in range(50_000))
    ix.query(rng.getrandbits(64), 3)
    ix.query(rng.getrandbits(64), 6)
    assert (ix.stats.probe_queries, ix.stats.scan_queries) == (2, 0)
    ix.query(rng.getrandbits(64), 20)
    assert ix.stats.scan_queries == 1
