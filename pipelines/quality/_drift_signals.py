"""Drift as signals: run events the monitor agent reads, and Prometheus
gauges on the runtime's registry (the ones ``dataops alerts rules`` alerts on).

Events (``rt.events.emit``), per call of :func:`record_drift`:

* one ``drift_detected`` per drifted column (and the label, when it drifted),
  level ``warning`` or ``error`` (critical), message ``"drift detected on
  DATASET.COLUMN: reasons"``, data ``name, column_kind, test, statistic, p_value,
  psi, severity, missing_ref, missing_cur``;
* one ``drift_checked`` summary, level ``info`` (``error`` on dataset drift),
  data ``drifted_share, dataset_drift, drifted (count), columns (count),
  drifted_columns (the first 100), label_drift, reference_rows, current_rows``.

Gauges (labels ``pipeline, dataset, column``): ``dataops_drift_psi``,
``dataops_drift_ks_statistic``, ``dataops_drift_p_value`` (+ ``test``),
``dataops_drift_missing_rate_change``, ``dataops_drift_severity`` (0 none,
1 warning, 2 critical); per dataset (``pipeline, dataset``):
``dataops_drift_drifted_share`` and ``dataops_drift_dataset_drift`` (0/1).
They are created on a registry the first time drift is recorded to it.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CollectorRegistry, Gauge

from pipelines.quality._drift import detect_drift
from pipelines.quality._drift_io import prepare_frame
from pipelines.quality._drift_models import SEVERITY_RANK, ColumnDrift, DriftConfig, DriftReport

if TYPE_CHECKING:
    from pipelines.runtime import Runtime

__all__ = ["record_drift", "drift_after_write", "drift_gauges", "DriftGauges", "LEVEL_BY_DRIFT_SEVERITY"]

LEVEL_BY_DRIFT_SEVERITY = {"critical": "error", "warning": "warning", "none": "info"}
_COLUMN = ["pipeline", "dataset", "column"]
_DATASET = ["pipeline", "dataset"]


class DriftGauges:
    """The drift gauges of one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str, labels: list[str]) -> Gauge:
            try:
                return Gauge(name, doc, labels, registry=registry)
            except ValueError:  # registered on this registry by someone else already
                existing = getattr(registry, "_names_to_collectors", {}).get(name)
                if isinstance(existing, Gauge):
                    return existing
                raise

        self.psi = gauge("dataops_drift_psi", "PSI of a column against the drift reference.", _COLUMN)
        self.ks_statistic = gauge("dataops_drift_ks_statistic", "Two-sample KS statistic of a numeric column.", _COLUMN)
        self.p_value = gauge(
            "dataops_drift_p_value", "p-value of a column's drift test (ks or chi2).", [*_COLUMN, "test"]
        )
        self.missing_change = gauge(
            "dataops_drift_missing_rate_change", "Current minus reference share of missing values.", _COLUMN
        )
        self.severity = gauge("dataops_drift_severity", "Drift severity: 0 none, 1 warning, 2 critical.", _COLUMN)
        self.drifted_share = gauge("dataops_drift_drifted_share", "Share of compared columns that drifted.", _DATASET)
        self.dataset_drift = gauge("dataops_drift_dataset_drift", "1 when the dataset as a whole drifted.", _DATASET)

    def set(self, pipeline: str, dataset: str, report: DriftReport) -> None:
        for c in report.all_columns():
            labels = (pipeline, dataset, c.name)
            if c.psi is not None:
                self.psi.labels(*labels).set(c.psi)
            if c.test == "ks" and c.statistic is not None:
                self.ks_statistic.labels(*labels).set(c.statistic)
            if c.p_value is not None:
                self.p_value.labels(*labels, c.test).set(c.p_value)
            self.missing_change.labels(*labels).set(c.missing_change)
            self.severity.labels(*labels).set(SEVERITY_RANK[c.severity])
        self.drifted_share.labels(pipeline, dataset).set(report.drifted_share)
        self.dataset_drift.labels(pipeline, dataset).set(1.0 if report.dataset_drift else 0.0)


_GAUGES: weakref.WeakKeyDictionary[CollectorRegistry, DriftGauges] = weakref.WeakKeyDictionary()
_GAUGES_LOCK = threading.Lock()


def drift_gauges(registry: CollectorRegistry) -> DriftGauges:
    """The drift gauges of ``registry``, created on first use (once per registry)."""
    with _GAUGES_LOCK:
        gauges = _GAUGES.get(registry)
        if gauges is None:
            gauges = _GAUGES[registry] = DriftGauges(registry)
        return gauges


def _column_event(c: ColumnDrift, dataset: str) -> dict[str, Any]:
    return {
        "level": LEVEL_BY_DRIFT_SEVERITY[c.severity],
        "message": f"drift detected on {dataset}.{c.name}: {'; '.join(c.reasons)} ({c.severity})",
        "name": c.name,
        "column_kind": c.kind,
        "test": c.test,
        "statistic": c.statistic,
        "p_value": c.p_value,
        "psi": c.psi,
        "severity": c.severity,
        "missing_ref": c.missing_ref,
        "missing_cur": c.missing_cur,
    }


def record_drift(
    rt: Runtime,
    pipeline: str,
    dataset: str,
    report: DriftReport,
    *,
    run_id: str | None = None,
    snapshot_id: int | None = None,
    max_column_events: int = 50,
) -> None:
    """Emit ``report`` as run events of ``pipeline`` and set the drift gauges
    on ``rt.metrics.registry`` (see the module docstring). At most
    ``max_column_events`` ``drift_detected`` events are emitted, the most
    severe (then highest PSI) first; the summary counts them all."""
    flagged = [c for c in report.all_columns() if c.drifted]
    flagged.sort(key=lambda c: (-SEVERITY_RANK[c.severity], -(c.psi or 0.0)))
    for c in flagged[:max_column_events]:
        rt.events.emit(
            pipeline,
            "drift_detected",
            run_id=run_id,
            dataset=dataset,
            stage="drift",
            snapshot_id=snapshot_id,
            **_column_event(c, dataset),
        )
    drifted = report.drifted_columns
    n = len(report.columns)
    summary = f"drift check on {dataset}: {len(drifted)} of {n} columns drifted ({report.drifted_share:.0%})"
    if report.dataset_drift:
        summary = (
            f"dataset drift detected on {dataset}: {len(drifted)} of {n} columns drifted ({report.drifted_share:.0%})"
        )
    if report.label_drift is not None and report.label_drift.drifted:
        summary += f"; label {report.label_drift.name!r} drifted"
    rt.events.emit(
        pipeline,
        "drift_checked",
        run_id=run_id,
        dataset=dataset,
        stage="drift",
        level="error" if report.dataset_drift else "info",
        message=summary,
        drifted_share=report.drifted_share,
        dataset_drift=report.dataset_drift,
        drifted=len(drifted),
        columns=n,
        drifted_columns=drifted[:100],
        label_drift=None if report.label_drift is None else report.label_drift.drifted,
        reference_rows=report.reference_rows,
        current_rows=report.current_rows,
        severity=report.severity,
        snapshot_id=snapshot_id,
    )
    drift_gauges(rt.metrics.registry).set(pipeline, dataset, report)


def _sample(table: pa.Table, rows: int, seed: int) -> pa.Table:
    if table.num_rows <= rows:
        return table
    picks = np.sort(np.random.default_rng(seed & 0xFFFFFFFF).choice(table.num_rows, size=rows, replace=False))
    return table.take(pa.array(picks))


def drift_after_write(
    rt: Runtime,
    pipeline: str,
    dataset: str,
    *,
    snapshot_id: int | None,
    run_id: str | None = None,
    reference_snapshot: int | None = None,
    reference_rows: int = 100_000,
    label: str | None = None,
    columns: list[str] | None = None,
    config: DriftConfig | None = None,
) -> DriftReport | None:
    """What a pipeline calls after it commits a snapshot of ``dataset``'s table.

    Current: the rows that snapshot added (rows whose ``run_id`` is the run
    that wrote it; a table without a run_id column compares whole snapshots).
    Reference: the table as of ``reference_snapshot`` (a pinned, reviewed
    snapshot) or else as of the snapshot before this one — everything
    accepted before — uniformly sampled down to ``reference_rows``.
    Emits and records the report (:func:`record_drift`) and returns it; None
    when there is nothing to compare (no snapshot, the table's first
    snapshot, or no rows added).
    """
    if snapshot_id is None:
        return None
    infos = {s.snapshot_id: s for s in rt.offline.snapshots(dataset)}
    info = infos.get(snapshot_id)
    ref_id = reference_snapshot if reference_snapshot is not None else (info.parent_id if info else None)
    if info is None or ref_id is None:
        return None
    current = rt.offline.scan(dataset, snapshot_id)
    writer = run_id or info.run_id
    if writer is not None and "run_id" in current.column_names:
        current = current.filter(pc.equal(current.column("run_id"), writer))
    reference = rt.offline.scan(dataset, ref_id)
    if current.num_rows == 0 or reference.num_rows == 0:
        return None
    cfg = config or DriftConfig()
    if min(current.num_rows, reference.num_rows) < cfg.min_rows_after_write:
        # A few dozen rows differ from the past by chance alone: judging them
        # would page people about noise.
        rt.events.emit(
            pipeline, "drift_skipped", run_id=run_id or info.run_id, dataset=dataset, level="info",
            message=f"drift not judged on {dataset}: {current.num_rows} new rows, {reference.num_rows} before "
            f"(fewer than {cfg.min_rows_after_write})",
        )
        return None
    reference = _sample(reference, reference_rows, seed=snapshot_id)
    report = detect_drift(prepare_frame(reference), prepare_frame(current), columns=columns, label=label, config=config)
    record_drift(rt, pipeline, dataset, report, run_id=run_id or info.run_id, snapshot_id=snapshot_id)
    return report
