"""A real Prometheus (Debian's package) scrapes a pipeline runtime's
exporter, and the monitor agent's ``get_metrics`` tool sees the run's values
through PromQL. The generated alerting rules load and evaluate there too.

The test starts Prometheus itself (a free port, a config and TSDB in
tmp_path) and always kills it; it skips only when the binary is missing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.settings import load_settings
from guardrails import Guardrails, load_policy
from pipelines.ingestion import ingest, make_sample_dataset
from pipelines.quality import alert_rules, serve_metrics, write_rules
from pipelines.runtime import PipelineMetrics, Runtime
from tools import ToolBox
from tools._live import LiveBackend
from tools._prometheus import PrometheusMetrics

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
JOB = "dataops"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready: Callable[[], Any], timeout: float, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.2)
    tail = "\n" + log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


class PrometheusServer:
    def __init__(self, root: Path, scrape_port: int) -> None:
        assert PROMETHEUS is not None
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "prometheus.log"
        write_rules(root / "dataops.rules.yml")
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["dataops.rules.yml"],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{scrape_port}"]}]}],
        }
        (root / "prometheus.yml").write_text(yaml.safe_dump(config))
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
            )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"prometheus exited with {self.proc.returncode}:\n{self.log.read_text(errors='replace')[-3000:]}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str) -> Any:
        return httpx.get(f"{self.url}/api/v1/{path}", timeout=5).raise_for_status().json()["data"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Runtime, PrometheusServer]]:
    if PROMETHEUS is None:
        pytest.skip("the prometheus binary is not installed (apt-get install prometheus; .ci/run does)")
    # The registry first: its exporter's port goes into Prometheus' config, and
    # Prometheus' URL into the runtime's settings.
    metrics = PipelineMetrics()
    exporter, port = serve_metrics(metrics.registry)
    server: PrometheusServer | None = None
    rt: Runtime | None = None
    try:
        server = PrometheusServer(tmp_path / "prometheus", port)
        _wait("prometheus to be ready", server.ready, 60, server.log)
        rt = Runtime.open(load_settings(home=tmp_path / "ws", prometheus_url=server.url), metrics=metrics)
        yield rt, server
    finally:
        if server is not None:
            server.stop()
        exporter.stop()
        if rt is not None:
            rt.close()


def test_monitor_sees_the_run_through_promql(world: tuple[Runtime, PrometheusServer], tmp_path: Path) -> None:
    rt, server = world
    info = make_sample_dataset(tmp_path / "in", n_images=8, n_audio=1, n_text=2)
    summary = ingest(rt, str(info.folder), "photos")
    assert summary.status == "succeeded", summary.error
    assert summary.accepted == info.n_accepted and summary.quarantined > 0
    finished = time.time()

    prom = PrometheusMetrics(server.url)

    def scraped_after_the_run() -> bool:
        up = prom.query(f'timestamp(up{{job="{JOB}"}}) > {finished} and up{{job="{JOB}"}} == 1')
        return bool(up)

    _wait("a scrape after the run", scraped_after_the_run, 30, server.log)

    # The monitor agent's door: the ToolBox over the live backend, reading Prometheus.
    guards = Guardrails(rt.engine, load_policy(), bounds={})
    tools = ToolBox(LiveBackend(rt, {}, {}), guards)
    result = tools.observe("get_metrics", {"name": "dataops_records_accepted_total", "labels": {"dataset": "photos"}})
    assert str(result.status) == "ok", result.error
    (row,) = result.data
    assert row["name"] == "dataops_records_accepted_total"
    assert row["value"] == summary.accepted
    # Scraped, not read in-process: Prometheus added the job and instance labels.
    assert row["labels"]["job"] == JOB and row["labels"]["pipeline"] == "ingestion"

    # The run's accounting holds in PromQL too: read = accepted + duplicates + quarantined.
    def total(metric: str) -> float:
        rows = prom.query(f'sum(dataops_{metric}_total{{dataset="photos"}}) or vector(0)')
        return float(rows[0]["value"])

    assert total("records_in") == summary.read
    assert total("records_quarantined") == summary.quarantined
    assert total("records_duplicate") == summary.duplicates
    assert total("records_accepted") + total("records_duplicate") + total("records_quarantined") == summary.read
    status = prom.metric("dataops_run_status", {"dataset": "photos", "status": "succeeded"})
    assert [r["value"] for r in status] == [1.0]

    # The generated alerting rules load and evaluate cleanly on the real server; a good run fires nothing critical.
    expected = {r["alert"] for g in alert_rules()["groups"] for r in g["rules"]}

    def rules_evaluated() -> dict[str, str] | None:
        rules = {r["name"]: r["health"] for g in server.api("rules")["groups"] for r in g["rules"]}
        return rules if rules and all(h != "unknown" for h in rules.values()) else None

    health = _wait("the rules to be evaluated", rules_evaluated, 30, server.log)
    assert set(health) == expected and set(health.values()) == {"ok"}, health
    firing = {a["labels"]["alertname"] for a in server.api("alerts")["alerts"]}
    assert not firing & {"DataopsRunFailed", "DataopsExporterDown", "DataopsQuarantineRatioCritical"}
