"""Drift as signals: run events, Prometheus gauges, and the after-write hook."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, Gauge

from pipelines.ingestion import SAMPLE_SCHEMA
from pipelines.quality import DriftReport, detect_drift, drift_after_write, drift_gauges, record_drift
from pipelines.runtime import Runtime
from pipelines.runtime._metrics import PipelineMetrics
from tools._live_observe import event_signals

N = 3000


def _report(seed: int = 0) -> DriftReport:
    rng = np.random.default_rng(seed)
    missing = rng.normal(size=N)
    missing[: N // 4] = np.nan
    ref = pa.table(
        {"a": rng.normal(size=N), "b": rng.normal(size=N), "c": rng.normal(size=N), "y": rng.choice([0, 1], N)}
    )
    cur = pa.table(
        {"a": rng.normal(1, 1, N), "b": missing, "c": rng.normal(size=N), "y": rng.choice([0, 1], N, p=[0.2, 0.8])}
    )
    return detect_drift(ref, cur, label="y")


def test_record_drift_emits_events(runtime: Runtime) -> None:
    report = _report()
    record_drift(runtime, "ingestion", "photos", report, run_id="r-1", snapshot_id=42)
    events = runtime.events.list(pipeline="ingestion")
    detected = [e for e in events if e.type == "drift_detected"]
    assert sorted(e.data["name"] for e in detected) == ["a", "b", "y"]
    for e in detected:
        assert e.dataset == "photos" and e.run_id == "r-1" and e.stage == "drift"
        assert e.level == {"critical": "error", "warning": "warning"}[e.data["severity"]]
        assert e.message.startswith(f"drift detected on photos.{e.data['name']}: ")
        assert {"test", "statistic", "psi", "p_value", "severity"} <= set(e.data)
    a = next(e for e in detected if e.data["name"] == "a")
    assert a.data["test"] == "ks" and a.data["statistic"] == report.column("a").statistic
    (summary,) = [e for e in events if e.type == "drift_checked"]
    assert summary.data["drifted"] == 2 and summary.data["columns"] == 3 and summary.data["label_drift"] is True
    assert summary.data["dataset_drift"] is True and summary.level == "error"
    assert "dataset drift detected on photos: 2 of 3 columns drifted" in summary.message
    # the monitor agent sees them as signals, with the drift wording its rules match
    signals = event_signals(events, events[0].ts)
    logs = [s.message for s in signals if s.kind == "log"]
    assert any(m and m.startswith("drift detected on photos.a") for m in logs)


def test_record_drift_sets_gauges_once_per_registry(runtime: Runtime) -> None:
    report = _report()
    record_drift(runtime, "ingestion", "photos", report)
    record_drift(runtime, "ingestion", "photos", _report(1))  # same registry: no duplicate registration
    reg = runtime.metrics.registry
    labels = {"pipeline": "ingestion", "dataset": "photos"}
    assert reg.get_sample_value("dataops_drift_psi", {**labels, "column": "a"}) == pytest.approx(
        _report(1).column("a").psi
    )
    assert reg.get_sample_value("dataops_drift_ks_statistic", {**labels, "column": "c"}) is not None
    assert reg.get_sample_value("dataops_drift_p_value", {**labels, "column": "y", "test": "chi2"}) is not None
    assert reg.get_sample_value("dataops_drift_severity", {**labels, "column": "b"}) == 2
    assert reg.get_sample_value("dataops_drift_missing_rate_change", {**labels, "column": "b"}) == pytest.approx(0.25)
    assert reg.get_sample_value("dataops_drift_drifted_share", labels) == pytest.approx(2 / 3)
    assert reg.get_sample_value("dataops_drift_dataset_drift", labels) == 1.0
    assert drift_gauges(reg) is drift_gauges(reg)
    other = PipelineMetrics()
    assert drift_gauges(other.registry) is not drift_gauges(reg)


def test_gauges_reuse_a_metric_registered_elsewhere() -> None:
    registry = CollectorRegistry()
    existing = Gauge(
        "dataops_drift_psi", "registered first by someone else", ["pipeline", "dataset", "column"], registry=registry
    )
    assert drift_gauges(registry).psi is existing


def _samples(run: str, n: int, rng: np.random.Generator, quality: tuple[float, float], cameras: list[str]) -> pa.Table:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    meta = [
        json.dumps({"camera": str(c), "iso": int(i)})
        for c, i in zip(rng.choice(cameras, n), rng.choice([100, 200], n), strict=True)
    ]
    return pa.Table.from_pylist(
        [
            {
                "sample_id": f"{run}-{i}", "dataset": "photos", "source": f"s/{run}/{i}", "uri": f"u/{run}/{i}",
                "modality": "image", "sha256": f"{run}{i:060d}", "phash": int(rng.integers(0, 2**62)),
                "phash_hex": "00", "quality_score": float(q), "size_bytes": int(rng.integers(1000, 2000)),
                "metadata": meta[i], "run_id": run, "ingested_at": now,
            }
            for i, q in enumerate(np.clip(rng.normal(*quality, n), 0, 1))
        ],
        schema=SAMPLE_SCHEMA,
    )  # fmt: skip


def test_drift_after_write_compares_the_new_rows_with_the_table_before(runtime: Runtime) -> None:
    rng = np.random.default_rng(9)
    off = runtime.offline
    off.ensure_table("photos", SAMPLE_SCHEMA)
    first = off.append("photos", _samples("run-1", 1500, rng, (0.8, 0.05), ["canon", "nikon"]), run_id="run-1")
    assert (
        drift_after_write(runtime, "ingestion", "photos", snapshot_id=first, run_id="run-1") is None
    )  # nothing before
    second = off.append("photos", _samples("run-2", 600, rng, (0.8, 0.05), ["canon", "nikon"]), run_id="run-2")
    stable = drift_after_write(runtime, "ingestion", "photos", snapshot_id=second, run_id="run-2")
    assert stable is not None and stable.reference_rows == 1500 and stable.current_rows == 600
    assert {c.name for c in stable.columns} == {
        "modality",
        "quality_score",
        "size_bytes",
        "metadata.camera",
        "metadata.iso",
    }
    assert stable.drifted_columns == []
    third = off.append("photos", _samples("run-3", 600, rng, (0.5, 0.1), ["canon", "nikon", "gopro"]), run_id="run-3")
    drifted = drift_after_write(runtime, "ingestion", "photos", snapshot_id=third)  # run id read off the snapshot
    assert drifted is not None and drifted.reference_rows == 2100 and drifted.current_rows == 600
    assert set(drifted.drifted_columns) == {"quality_score", "metadata.camera"}
    assert drifted.column("metadata.camera").new_categories == ["gopro"]
    events = runtime.events.list(pipeline="ingestion", types=["drift_detected"])
    assert {e.data["name"] for e in events} == {"quality_score", "metadata.camera"}
    assert all(e.run_id == "run-3" and e.data["snapshot_id"] == third for e in events)
    pinned = drift_after_write(
        runtime, "ingestion", "photos", snapshot_id=third, reference_snapshot=first, reference_rows=500
    )
    assert pinned is not None and pinned.reference_rows == 500
    assert drift_after_write(runtime, "ingestion", "photos", snapshot_id=None) is None
