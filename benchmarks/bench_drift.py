"""Drift detection: dataops' ``detect_drift`` against Evidently's data-drift
preset, on the same frames, in the same run.

Evidently is not a project dependency (0.7 needs pandas < 3); give it a
virtual environment of its own, once::

    python3 -m venv /tmp/evenv
    /tmp/evenv/bin/pip install 'evidently==0.7.*' 'pandas<3' pyarrow

then, from the repository root::

    .venv/bin/python -m benchmarks.bench_drift --evidently-python /tmp/evenv/bin/python
    .venv/bin/python -m benchmarks.bench_drift --shapes 20000x20 --repeats 3   # quicker

Without ``--evidently-python`` the benchmark uses this interpreter if it can
import evidently, else ``/tmp/evenv/bin/python`` if it exists, else it runs
dataops alone.

Shapes (rows x numeric columns, default ``100000x20`` and ``10000x1000``):
reference and current have that many rows, drawn with a fixed seed. In the
current frame 10 % of the columns (at least two) shift — half by half a
standard deviation in the mean, half by 1.5x in scale — and one column,
``missing_jump``, keeps its distribution but loses 25 % of its values to
nulls; every other column is drawn afresh from the reference's distribution.

Timing: dataops times ``detect_drift`` on the in-memory Arrow tables (after
one warm-up call on a small slice); Evidently runs in its own interpreter
(this file with ``--evidently-worker``), reads the same frames from Parquet
into pandas before its clock starts, and times
``Report([DataDriftPreset()]).run(current, reference)`` plus reading the
results (``snapshot.dict()``). Both report the best of ``--repeats`` runs
(Evidently: ``--evidently-repeats``, 1 by default: it takes minutes on the
large shape). Every dataops KS statistic and p-value is then checked against
``scipy.stats.ks_2samp`` on the same columns.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MISSING = "missing_jump"


# --- the frames ------------------------------------------------------------------
def make_frames(rows: int, cols: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Reference and current columns, and the names of the planted shifts."""
    rng = np.random.default_rng(seed)
    names = [f"c{i:04d}" for i in range(cols - 1)] + [MISSING]
    n_shift = max(2, (cols - 1) // 10)
    shifted = names[:n_shift]
    ref: dict[str, np.ndarray] = {}
    cur: dict[str, np.ndarray] = {}
    for i, name in enumerate(names):
        loc, scale = float(i % 7), 1.0 + (i % 3)
        ref[name] = rng.normal(loc, scale, rows)
        if name in shifted:
            mean_shift = i % 2 == 0
            cur[name] = rng.normal(
                loc + (0.5 * scale if mean_shift else 0.0), scale * (1.0 if mean_shift else 1.5), rows
            )
        else:
            cur[name] = rng.normal(loc, scale, rows)
    cur[MISSING][rng.random(rows) < 0.25] = np.nan
    return ref, cur, shifted


def write_parquet(columns: dict[str, np.ndarray], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({k: pa.array(v, from_pandas=True) for k, v in columns.items()}), path)


# --- Evidently, in its own interpreter ----------------------------------------------
def evidently_worker(ref_path: str, cur_path: str, repeats: int) -> None:
    """Run in the Evidently venv: print one JSON line with timings and findings."""
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    ref, cur = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    seconds, result = [], {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref).dict()
        seconds.append(time.perf_counter() - t0)
    drifted, methods = [], set()
    share = None
    for metric in result["metrics"]:
        config, value = metric["config"], metric["value"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = value["share"]
        elif config["type"].endswith("ValueDrift"):
            method = config["method"]
            methods.add(method)
            lower_is_drift = "p_value" in method
            if (value < config["threshold"]) if lower_is_drift else (value >= config["threshold"]):
                drifted.append(config["column"])
    import evidently

    out = {
        "version": evidently.__version__,
        "seconds": seconds,
        "drifted": drifted,
        "share": share,
        "methods": sorted(methods),
    }
    sys.stdout.write(json.dumps(out) + "\n")


def run_evidently(python: str, ref_path: Path, cur_path: Path, repeats: int) -> dict[str, Any] | None:
    cmd = [python, str(Path(__file__).resolve()), "--evidently-worker", str(ref_path), str(cur_path), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(f"Evidently run failed:\n{proc.stderr[-2000:]}\n")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def find_evidently(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    try:
        import evidently  # noqa: F401

        return sys.executable
    except ImportError:
        fallback = Path("/tmp/evenv/bin/python")
        return str(fallback) if fallback.exists() else None


# --- dataops ------------------------------------------------------------------------
def run_ours(ref: dict[str, np.ndarray], cur: dict[str, np.ndarray], repeats: int) -> tuple[Any, list[float]]:
    import pyarrow as pa

    from pipelines.quality import detect_drift

    rt, ct = pa.table(ref), pa.table({k: pa.array(v, from_pandas=True) for k, v in cur.items()})
    detect_drift(rt.slice(0, 1000), ct.slice(0, 1000))  # warm-up: imports, first-call costs
    seconds, report = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        report = detect_drift(rt, ct)
        seconds.append(time.perf_counter() - t0)
    return report, seconds


def check_against_scipy(
    report: Any, ref: dict[str, np.ndarray], cur: dict[str, np.ndarray]
) -> tuple[float, float, float, int]:
    from scipy.stats import ks_2samp

    worst_d = worst_p = 0.0
    t0 = time.perf_counter()
    for c in report.columns:
        x, y = ref[c.name], cur[c.name]
        r = ks_2samp(x[~np.isnan(x)], y[~np.isnan(y)])
        worst_d = max(worst_d, abs(c.statistic - float(r.statistic)))
        worst_p = max(worst_p, abs(c.p_value - float(r.pvalue)))
    return worst_d, worst_p, time.perf_counter() - t0, len(report.columns)


# --- the run ------------------------------------------------------------------------
def bench_shape(rows: int, cols: int, args: argparse.Namespace, python: str | None, console: Any) -> dict[str, Any]:
    from rich.table import Table

    ref, cur, shifted = make_frames(rows, cols, args.seed)
    report, ours = run_ours(ref, cur, args.repeats)
    worst_d, worst_p, scipy_s, n_checked = check_against_scipy(report, ref, cur)
    ev = None
    if python is not None:
        with tempfile.TemporaryDirectory(prefix="bench_drift_") as tmp:
            ref_path, cur_path = Path(tmp) / "ref.parquet", Path(tmp) / "cur.parquet"
            write_parquet(ref, ref_path)
            write_parquet(cur, cur_path)
            ev = run_evidently(python, ref_path, cur_path, args.evidently_repeats)
    expected = set(shifted)
    ours_drifted = set(report.drifted_columns)
    best = min(ours)
    t = Table(
        title=f"Drift on {rows:,} rows x {cols:,} numeric columns ({len(shifted)} shifted + {MISSING})",
        title_justify="left",
    )
    t.add_column("")
    t.add_column("dataops", justify="right")
    t.add_column(f"Evidently {ev['version']}" if ev else "Evidently (not run)", justify="right")
    ev_best = min(ev["seconds"]) if ev else None
    t.add_row("seconds (best)", f"{best:.2f}", f"{ev_best:.2f}" if ev else "–")
    t.add_row("speed-up", f"{ev_best / best:.0f}x" if ev else "–", "1x" if ev else "–")
    ev_drifted = set(ev["drifted"]) if ev else set()
    t.add_row(
        "planted shifts found",
        f"{len(ours_drifted & expected)}/{len(expected)}",
        f"{len(ev_drifted & expected)}/{len(expected)}" if ev else "–",
    )
    t.add_row(
        f"{MISSING} (0 → 25 % missing) flagged",
        "yes" if MISSING in ours_drifted else "NO",
        ("yes" if MISSING in ev_drifted else "no") if ev else "–",
    )
    stable = set(ref) - expected - {MISSING}
    t.add_row("stable columns flagged", str(len(ours_drifted & stable)), str(len(ev_drifted & stable)) if ev else "–")
    t.add_row(
        "drifted share", f"{report.drifted_share:.3f}", f"{ev['share']:.3f}" if ev and ev["share"] is not None else "–"
    )
    t.add_row("per-column test", "KS + PSI + missing rate", ", ".join(ev["methods"]) if ev else "–")
    console.print(t)
    console.print(
        f"KS vs scipy.stats.ks_2samp on {n_checked} columns: max |Δ statistic| {worst_d:.1e}, "
        f"max |Δ p-value| {worst_p:.1e} (scipy loop alone: {scipy_s:.2f} s); dataops runs: "
        + ", ".join(f"{s:.2f}" for s in ours)
        + " s\n"
    )
    return {
        "rows": rows,
        "cols": cols,
        "dataops_seconds": ours,
        "evidently": ev,
        "ratio": (ev_best / best) if ev else None,
        "ks_max_abs_diff": worst_d,
        "p_max_abs_diff": worst_p,
        "scipy_seconds": scipy_s,
        "dataops_drifted": sorted(ours_drifted),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--evidently-worker":
        evidently_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="100000x20,10000x1000", help="ROWSxCOLS,… (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="dataops runs per shape (best reported)")
    parser.add_argument("--evidently-repeats", type=int, default=1)
    parser.add_argument("--evidently-python", help="an interpreter that has evidently 0.7 installed")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from rich.console import Console

    console = Console(width=max(Console().width, 100))
    python = None if args.no_evidently else find_evidently(args.evidently_python)
    if python is None and not args.no_evidently:
        console.print("[yellow]evidently not found: running dataops alone (see the module docstring)[/]")
    console.print(f"machine: {os.cpu_count()} CPUs · load {os.getloadavg()[0]:.1f} · numpy {np.__version__}")
    results = []
    for shape in args.shapes.split(","):
        rows, cols = (int(v) for v in shape.lower().split("x"))
        results.append(bench_shape(rows, cols, args, python, console))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
