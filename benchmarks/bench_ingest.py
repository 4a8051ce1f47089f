"""Ingestion throughput against a bare loop, in the same process.

The bare loop only reads, decodes, hashes (sha256 + pHash) and writes each
file content-addressed; the pipeline adds validation, quality scoring, exact
and near-duplicate dedup, the ledger, the online store and the Iceberg
snapshot. Run by hand:

    .venv/bin/python benchmarks/bench_ingest.py [--images 3000] [--fmt jpeg]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from app.logging import configure_logging
from app.settings import load_settings
from pipelines.ingestion import decode_image, ingest, make_images
from pipelines.runtime import Runtime


def bare_loop(files: list[Path], out: Path) -> float:
    t0 = time.perf_counter()
    for f in files:
        data = f.read_bytes()
        decode_image(data, with_phash=True)
        sha = hashlib.sha256(data).hexdigest()
        dest = out / sha[:2] / sha[2:4] / sha
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--fmt", choices=["png", "jpeg"], default="jpeg")
    ap.add_argument("--repeat", type=int, default=2, help="Alternate both sides this many times; best of each.")
    args = ap.parse_args()
    console = Console()
    configure_logging("console", "WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        console.print(f"generating {args.images} distinct 256x256 {args.fmt} images…")
        files = sorted(make_images(root / "images", args.images, size=256, seed=7, fmt=args.fmt))
        # Warm the page cache so neither side pays for the first read.
        for f in files:
            f.read_bytes()
        bare_times, pipe_times = [], []
        for i in range(args.repeat):
            # Alternate the two sides so that background load hits both alike.
            bare_times.append(bare_loop(files, root / f"bare{i}"))
            rt = Runtime.open(load_settings(home=root / f"ws{i}"))
            t0 = time.perf_counter()
            summary = ingest(rt, str(root / "images"), "bench")
            pipe_times.append(time.perf_counter() - t0)
            rt.close()
        bare_s, pipe_s = min(bare_times), min(pipe_times)
    assert summary.read == args.images, summary
    table = Table(title=f"Ingestion of {args.images} images ({args.fmt}, 256x256), best of {args.repeat}")
    for col in ("path", "seconds", "images/s", "ratio"):
        table.add_column(col)
    table.add_row("bare loop (decode + sha256 + pHash + write)", f"{bare_s:.2f}", f"{args.images / bare_s:.0f}", "1.00")
    table.add_row(
        "dataops ingest (full pipeline)", f"{pipe_s:.2f}", f"{args.images / pipe_s:.0f}", f"{bare_s / pipe_s:.2f}"
    )
    console.print(table)
    console.print(
        f"accepted {summary.accepted}, duplicates {summary.duplicates}, quarantined {summary.quarantined}; "
        f"ratio {bare_s / pipe_s:.2f} of the bare loop's throughput (target ≥ 0.6)"
    )


if __name__ == "__main__":
    main()
