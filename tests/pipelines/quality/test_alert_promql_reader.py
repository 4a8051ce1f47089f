"""The PromQL reader behind ``get_metrics`` (tools/_prometheus.py), against
a local HTTP server answering like Prometheus' query API: result shapes,
the selector it sends, errors as one-line StorageErrors, and the live
backend switching to it when ``prometheus_url`` is set."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from app.errors import InputError, StorageError
from app.settings import load_settings
from pipelines.runtime import Runtime
from tools import ToolCall
from tools._live import LiveBackend
from tools._prometheus import PrometheusMetrics, metric_names, selector

SERIES = [
    {"metric": {"__name__": "dataops_records_accepted_total", "pipeline": "ingestion", "dataset": "photos", "job": "dataops"}, "value": [1730800000.123, "42"]},
    {"metric": {"__name__": "dataops_records_accepted_total", "pipeline": "ingestion", "dataset": "audio", "job": "dataops"}, "value": [1730800000.123, "3"]},
]


class FakePrometheus:
    def __init__(self) -> None:
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query).get("query", [""])[0]
                fake.queries.append(query)
                code, body = fake.answer(parts.path, query)
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, path: str, query: str) -> tuple[int, dict[str, Any]]:
        ok = {"status": "success"}
        if path != "/api/v1/query":
            return 404, {"status": "error", "error": "not found"}
        if query.startswith("{__name__=~"):
            names_part, *matchers = query.strip("{}").split(", ")
            names = names_part.split("=~", 1)[1].strip('"').split("|")
            wanted = dict(m.split("=", 1) for m in matchers)
            rows = [
                s for s in SERIES
                if s["metric"]["__name__"] in names and all(f'"{s["metric"].get(k)}"' == v for k, v in wanted.items())
            ]
            return 200, {**ok, "data": {"resultType": "vector", "result": rows}}
        if query == "scalar(vector(2.5))":
            return 200, {**ok, "data": {"resultType": "scalar", "result": [1730800000.1, "2.5"]}}
        if query == "up[1m]":
            values = [[1730799940, "1"], [1730800000, "0"]]
            return 200, {**ok, "data": {"resultType": "matrix", "result": [{"metric": {"__name__": "up"}, "values": values}]}}
        if query == "sum(nan_metric)":
            return 200, {**ok, "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "NaN"]}]}}
        if query == "broken(":
            error = '1:8: parse error: unexpected end of input in "broken("'
            return 400, {"status": "error", "errorType": "bad_data", "error": error}
        return 200, {**ok, "data": {"resultType": "vector", "result": []}}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    p = FakePrometheus()
    yield p
    p.close()


def test_metric_names_match_the_in_process_reader() -> None:
    assert metric_names("records_accepted")[:2] == ["records_accepted", "records_accepted_total"]
    assert "dataops_records_accepted_total" in metric_names("records_accepted")
    assert metric_names("dataops_stage_latency_seconds") == [
        "dataops_stage_latency_seconds",
        "dataops_stage_latency_seconds_total",
        "dataops_stage_latency_seconds_bucket",
        "dataops_stage_latency_seconds_count",
        "dataops_stage_latency_seconds_sum",
    ]
    assert selector("dataops_batch_size", {"dataset": 'a"b\\c'}).endswith(r'dataset="a\"b\\c"}')
    with pytest.raises(InputError, match="not a metric name"):
        selector("rate(x[5m])")
    with pytest.raises(InputError, match="not a label name"):
        selector("x", {"bad-label": "1"})


def test_query_shapes(prom: FakePrometheus) -> None:
    p = PrometheusMetrics(prom.url)
    rows = p.metric("dataops_records_accepted_total", {"dataset": "photos"})
    assert rows == [{"name": "dataops_records_accepted_total", "labels": {"pipeline": "ingestion", "dataset": "photos", "job": "dataops"}, "value": 42.0}]
    assert prom.queries[-1] == selector("dataops_records_accepted_total", {"dataset": "photos"})
    assert p.query("scalar(vector(2.5))") == [{"name": None, "labels": {}, "value": 2.5}]
    assert p.query("up[1m]") == [{"name": "up", "labels": {}, "value": 0.0}]  # a range vector's latest sample
    assert math.isnan(p.query("sum(nan_metric)")[0]["value"])
    assert p.query("nothing_here") == []
    p.close()


def test_errors_are_one_line_storage_errors(prom: FakePrometheus) -> None:
    p = PrometheusMetrics(prom.url, retries=0)
    with pytest.raises(StorageError) as info:
        p.query("broken(")
    assert str(info.value) == (
        f"prometheus {prom.url}: query 'broken(' failed: 1:8: parse error: unexpected end of input in \"broken(\""
    )
    down = PrometheusMetrics("http://127.0.0.1:9", retries=0, timeout=2)
    with pytest.raises(StorageError, match=r"prometheus http://127.0.0.1:9: query 'up' failed: ConnectionError") as info:
        down.query("up")
    assert "\n" not in str(info.value)
    assert not down.reachable() and PrometheusMetrics(prom.url).reachable()
    with pytest.raises(StorageError, match="must start with http"):
        PrometheusMetrics("prometheus:9090")


def test_live_backend_reads_prometheus_when_configured(prom: FakePrometheus, tmp_path: Path) -> None:
    rt = Runtime.open(load_settings(home=tmp_path / "ws", prometheus_url=prom.url))
    try:
        rt.metrics.records_accepted.labels("ingestion", "photos").inc(5)  # the in-process value is not what is read
        backend = LiveBackend(rt, {}, {})
        result = backend.handle(ToolCall(tool="get_metrics", args={"name": "records_accepted", "labels": {"dataset": "photos"}}))
        assert str(result.status) == "ok", result.error
        assert [(r["name"], r["value"]) for r in result.data] == [("dataops_records_accepted_total", 42.0)]
        missing = backend.handle(ToolCall(tool="get_metrics", args={"name": "dataops_drift_psi"}))
        assert str(missing.status) == "no_data"
        bad = backend.handle(ToolCall(tool="get_metrics", args={"name": "up or vector(1)"}))
        assert str(bad.status) == "error" and "not a metric name" in bad.error
    finally:
        rt.close()


def test_live_backend_reads_the_registry_by_default(tmp_path: Path) -> None:
    rt = Runtime.open(load_settings(home=tmp_path / "ws"))
    try:
        rt.metrics.records_accepted.labels("ingestion", "photos").inc(5)
        result = LiveBackend(rt, {}, {}).handle(ToolCall(tool="get_metrics", args={"name": "dataops_records_accepted_total"}))
        assert ("dataops_records_accepted_total", 5.0) in [(r["name"], r["value"]) for r in result.data]
    finally:
        rt.close()
