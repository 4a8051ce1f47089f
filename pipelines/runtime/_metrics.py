"""Prometheus metrics for every pipeline, on a registry owned by the runtime
(not the global one, so several runtimes can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipelines.runtime._models import RUN_STATUSES

__all__ = ["PipelineMetrics"]


class PipelineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_in = Counter(
            "dataops_records_in", "Records read from a source.", ["pipeline", "dataset"], registry=r
        )
        self.records_accepted = Counter(
            "dataops_records_accepted", "Records accepted.", ["pipeline", "dataset"], registry=r
        )
        self.records_quarantined = Counter(
            "dataops_records_quarantined",
            "Records quarantined, by reason.",
            ["pipeline", "dataset", "reason"],
            registry=r,
        )
        self.records_duplicate = Counter(
            "dataops_records_duplicate",
            "Records marked duplicate, by kind (exact, near).",
            ["pipeline", "dataset", "kind"],
            registry=r,
        )
        self.stage_latency = Histogram(
            "dataops_stage_latency_seconds",
            "Seconds a stage spent on one batch.",
            ["pipeline", "stage"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.stage_failures = Counter(
            "dataops_stage_failures", "Failed stage attempts.", ["pipeline", "stage"], registry=r
        )
        self.run_status = Gauge(
            "dataops_run_status",
            "1 for the current status of a pipeline's latest run, 0 for the others.",
            ["pipeline", "dataset", "status"],
            registry=r,
        )
        self.batch_size = Gauge(
            "dataops_batch_size", "Batch size in effect.", ["pipeline", "dataset"], registry=r
        )

    def set_status(self, pipeline: str, dataset: str, status: str) -> None:
        for s in RUN_STATUSES:
            self.run_status.labels(pipeline, dataset, s).set(1.0 if s == status else 0.0)
