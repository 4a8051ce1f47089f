"""Near-duplicate index scaling: NearDupIndex vs a brute-force linear scan.

Run by hand from the repository root::

    .venv/bin/python -m benchmarks.bench_dedup                 # n = 5k, 10k, 20k
    .venv/bin/python -m benchmarks.bench_dedup --sizes 5000 10000 20000 40000 80000

For each n it builds an index of n hashes (``add_many``) and then queries n
more, 10% of which are planted near-duplicates (1..radius bit flips) of stored
hashes. The hashes are random 64-bit values, not pHashes of real images:
generating and hashing tens of thousands of images would take minutes and
measures the image codecs, not the index. Real pHashes are less uniform than
random ones (every pHash has exactly 32 bits set), which puts more entries in
the busiest buckets; the hashing section at the end times real pHashes of
generated images separately.

Columns: ``build`` is add_many + compact of the n stored hashes; then the
n queries through the multi-index probe (``strategy="probe"``), the default
cost-model choice (``"auto"``), and a brute-force numpy scan over all n
stored hashes per query, written here independently of the index; all three
must find the same matches. ``ingest 2n`` replays the pipeline's pattern on
all 2n hashes in order: check each against everything before it, then add
it. The growth exponent is the slope of log(seconds) against log(n): 1 means
linear in n for n queries (constant per query), 2 means quadratic.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.ingestion import NearDupIndex, distinct_images, phash_bytes, phash_image, synth_image


def make_workload(n: int, radius: int, seed: int) -> tuple[list[int], list[int], int]:
    """n stored hashes, n query hashes (10% planted within ``radius``), planted count."""
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    queries = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    planted = rng.choice(n, size=n // 10, replace=False)
    for q in planted:
        bits = rng.choice(64, size=int(rng.integers(1, radius + 1)), replace=False)
        mask = np.uint64(sum(1 << int(b) for b in bits))
        queries[q] = stored[int(rng.integers(0, n))] ^ mask
    return stored.tolist(), queries.tolist(), len(planted)


def time_index(stored: list[int], queries: list[int], radius: int, strategy: str) -> tuple[float, float, int, float]:
    ix = NearDupIndex(strategy=strategy)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    ix.add_many((str(i), h) for i, h in enumerate(stored))
    ix.compact()  # below 8192 rows add_many leaves entries in the scanned tail
    t1 = time.perf_counter()
    found = sum(ix.nearest(h, radius) is not None for h in queries)
    t2 = time.perf_counter()
    per_query = ix.stats.probe_candidates / max(1, ix.stats.probe_queries)
    return t1 - t0, t2 - t1, found, per_query


def time_ingest(stored: list[int], queries: list[int], radius: int) -> tuple[float, int]:
    """The pipeline's pattern: each record is checked against everything
    before it, then added (interleaved nearest + add, strategy auto)."""
    ix = NearDupIndex()
    t0 = time.perf_counter()
    found = 0
    for i, h in enumerate(stored + queries):
        found += ix.nearest(h, radius) is not None
        ix.add(str(i), h)
    return time.perf_counter() - t0, found


def time_bruteforce(stored: list[int], queries: list[int], radius: int) -> tuple[float, int]:
    arr = np.array(stored, dtype=np.uint64)
    t0 = time.perf_counter()
    found = 0
    for h in queries:
        found += bool((np.bitwise_count(arr ^ np.uint64(h)) <= radius).any())
    return time.perf_counter() - t0, found


def slope(ns: list[int], seconds: list[float]) -> float:
    return float(np.polyfit(np.log(ns), np.log(seconds), 1)[0])


def time_hashing(n_images: int) -> list[tuple[str, float]]:
    """Milliseconds per image for phash_bytes on real encoded images."""
    images = distinct_images(n_images, seed=1, min_distance=0)
    rows = []
    for label, fmt, kwargs in (("256px PNG", "PNG", {"compress_level": 1}), ("256px JPEG q90", "JPEG", {"quality": 90})):
        blobs = []
        for img in images:
            buf = io.BytesIO()
            img.save(buf, format=fmt, **kwargs)
            blobs.append(buf.getvalue())
        t0 = time.perf_counter()
        for b in blobs:
            phash_bytes(b)
        rows.append((label, (time.perf_counter() - t0) / len(blobs) * 1e3))
    big = io.BytesIO()
    synth_image(np.random.default_rng(2), 2048).save(big, format="JPEG", quality=90)
    data = big.getvalue()
    reps = 10
    t0 = time.perf_counter()
    for _ in range(reps):
        phash_bytes(data)
    rows.append(("2048px JPEG (draft decode)", (time.perf_counter() - t0) / reps * 1e3))
    t0 = time.perf_counter()
    for _ in range(reps):
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            phash_image(img)
    rows.append(("2048px JPEG (full decode)", (time.perf_counter() - t0) / reps * 1e3))
    return rows


def render(title: str, header: list[str], rows: list[list[str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print(f"\n{title}")
        print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
        for r in rows:
            print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        return
    table = Table(title=title)
    for h in header:
        table.add_column(h, justify="right")
    for r in rows:
        table.add_row(*r)
    console = Console()
    Console(width=max(console.width, 110)).print(table)  # 9 columns: do not squeeze headers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--radius", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hash-images", type=int, default=200, help="images for the pHash timing (0: skip)")
    args = parser.parse_args(argv)

    ns: list[int] = []
    probe_s: list[float] = []
    auto_s: list[float] = []
    brute_s: list[float] = []
    ingest_s: list[float] = []
    rows: list[list[str]] = []
    for n in args.sizes:
        stored, queries, planted = make_workload(n, args.radius, args.seed + n)
        build, q_probe, f_probe, cand = time_index(stored, queries, args.radius, "probe")
        _, q_auto, f_auto, _ = time_index(stored, queries, args.radius, "auto")
        q_brute, f_brute = time_bruteforce(stored, queries, args.radius)
        t_ingest, _ = time_ingest(stored, queries, args.radius)
        if not f_probe == f_auto == f_brute or f_brute < planted:
            raise SystemExit(f"mismatch at n={n}: probe {f_probe}, auto {f_auto}, brute {f_brute}, planted {planted}")
        ns.append(n)
        probe_s.append(q_probe)
        auto_s.append(q_auto)
        brute_s.append(q_brute)
        ingest_s.append(t_ingest)
        rows.append(
            [
                f"{n:,}",
                f"{build:.3f}",
                f"{q_probe:.3f}",
                f"{q_auto:.3f}",
                f"{q_brute:.3f}",
                f"{q_brute / q_probe:.1f}x",
                f"{cand:.1f}",
                f"{f_brute:,}",
                f"{t_ingest:.3f}",
            ]
        )
    if len(ns) >= 2:
        rows.append(
            [
                "exponent",
                "",
                f"{slope(ns, probe_s):.2f}",
                f"{slope(ns, auto_s):.2f}",
                f"{slope(ns, brute_s):.2f}",
                "",
                "",
                "",
                f"{slope(ns, ingest_s):.2f}",
            ]
        )
    render(
        f"n stored + n queries, radius {args.radius} (seconds; random 64-bit hashes, 10% planted near-dups)",
        ["n", "build", "probe", "auto", "brute force", "brute/probe", "cand/query", "found", "ingest 2n"],
        rows,
    )
    if args.hash_images:
        hashing = time_hashing(args.hash_images)
        render("pHash cost per image (ms)", ["input", "ms"], [[label, f"{ms:.2f}"] for label, ms in hashing])


if __name__ == "__main__":
    main()
