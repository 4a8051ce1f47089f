"""The metrics exporter: a runtime's registry over HTTP, on a real port."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client import CollectorRegistry

from app.errors import ConfigError
from pipelines.quality import serve_metrics
from pipelines.runtime import PipelineMetrics


def test_serves_the_registry_and_stops() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    metrics.records_accepted.labels("ingestion", "photos").inc(7)
    metrics.set_status("ingestion", "photos", "succeeded")
    server, port = serve_metrics(metrics.registry)
    with server:
        assert port > 0 and server.port == port and server.running
        assert server.url == f"http://127.0.0.1:{port}/metrics"
        body = httpx.get(server.url, timeout=5).text
        assert 'dataops_records_accepted_total{dataset="photos",pipeline="ingestion"} 7.0' in body
        assert 'dataops_run_status{dataset="photos",pipeline="ingestion",status="succeeded"} 1.0' in body
        metrics.records_accepted.labels("ingestion", "photos").inc(3)  # live values, not a snapshot
        assert 'pipeline="ingestion"} 10.0' in httpx.get(server.url, timeout=5).text
    assert not server.running
    server.stop()  # twice is fine
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_taken_port_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            serve_metrics(CollectorRegistry(), port=port)
