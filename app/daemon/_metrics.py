"""The daemon's own figures, on the runtime's registry so one /metrics page
shows the pipelines and the daemon together."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["DaemonMetrics"]


class DaemonMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.tasks = Counter(
            "dataops_daemon_tasks",
            "Scheduled tasks the daemon ran, by task and outcome (ok, skipped, error).",
            ["task", "outcome"],
            registry=registry,
        )
        self.task_seconds = Histogram(
            "dataops_daemon_task_seconds",
            "Seconds a scheduled task took.",
            ["task"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
            registry=registry,
        )
        self.alerts = Counter(
            "dataops_daemon_alerts",
            "Alertmanager alerts received, by status (firing, resolved) and whether a job watches them.",
            ["status", "routed"],
            registry=registry,
        )
        self.requests = Counter(
            "dataops_daemon_http_requests",
            "HTTP requests served, by route and status code.",
            ["route", "code"],
            registry=registry,
        )
        self.incidents_opened = Counter(
            "dataops_daemon_incidents_opened", "Incidents the daemon's monitor cycles opened.", ["pipeline"], registry=registry
        )
        self.started = Gauge("dataops_daemon_start_time_seconds", "When the daemon started (unix time).", registry=registry)
