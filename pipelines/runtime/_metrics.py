"""Prometheus metrics for every pipeline, on a registry owned by the runtime
(not the global one, so several runtimes can live in one process)."""

from __future__ import annotations

import re
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipelines.runtime._models import RUN_STATUSES

__all__ = ["PipelineMetrics"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


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
        self._gauges: dict[str, tuple[Gauge, tuple[str, ...]]] = {}
        self._gauge_lock = threading.Lock()

    def gauge_set(self, pipeline: str, dataset: str, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        """Set the pipeline gauge ``dataops_<name>``, made on first use with the
        label names it is first set with (a pipeline's own figures: backlog,
        agreement, issue rates)."""
        if not _NAME.match(name):
            raise ValueError(f"bad metric name {name!r}")
        keys = tuple(sorted(labels or {}))
        with self._gauge_lock:
            if name not in self._gauges:
                gauge = Gauge(f"dataops_{name}", f"Pipeline figure {name}.", ["pipeline", "dataset", *keys], registry=self.registry)
                self._gauges[name] = (gauge, keys)
            gauge, known = self._gauges[name]
        if keys != known:
            raise ValueError(f"metric {name!r} has labels {list(known)}, not {list(keys)}")
        gauge.labels(pipeline, dataset, *((labels or {})[k] for k in keys)).set(float(value))

    def set_status(self, pipeline: str, dataset: str, status: str) -> None:
        for s in RUN_STATUSES:
            self.run_status.labels(pipeline, dataset, s).set(1.0 if s == status else 0.0)
