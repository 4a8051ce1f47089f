"""The daemon as a real subprocess on a free loopback port (``--port 0``; the
port is read from its ``daemon_listening`` log line), with a workspace and a
config of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from evals.faults import high_res_sample_schema
from pipelines.ingestion import make_sample_dataset

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-api-token-0123456789"


def write_config(path: Path, jobs: list[dict[str, Any]], **options: Any) -> Path:
    data = {
        "monitor_interval_s": 0.5,
        "incident_memory": False,
        "agents": {"validate_poll_s": 0.1, "validate_timeout_s": 10},
        **options,
        "jobs": jobs,
    }
    path.write_text(yaml.safe_dump(data))
    return path


def land(folder: Path, batch: int = 0, n_images: int = 10) -> None:
    make_sample_dataset(folder / f"b{batch:02d}", n_images=n_images, n_audio=1, n_text=2, seed=50 + batch)


@dataclass
class DaemonProcess:
    home: Path
    config: Path
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"daemon-{self.starts}.log"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATAOPS_") or k.startswith("DATAOPS_TEST_")}
        env.update(DATAOPS_HOME=str(self.home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **self.env)
        return env

    def start(self, *, timeout: float = 60.0) -> DaemonProcess:
        self.starts += 1
        cmd = [sys.executable, "-m", "app", "daemon", "--config", str(self.config), "--port", "0"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.environment(), stdout=log, stderr=subprocess.STDOUT)
        self.port = int(self.wait_log("daemon_listening", timeout=timeout)["port"])
        return self

    def logs(self, start: int | None = None) -> list[dict[str, Any]]:
        path = self.log_dir / f"daemon-{start or self.starts}.log"
        out = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "<not json>", "line": line})
        return out

    def wait_log(self, event: str, *, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.logs() if e.get("event") == event]
            if found:
                return found[0]
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} log line in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method: str, path: str, *, token: str | None = TOKEN, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return httpx.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/readyz", token=None).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"daemon not ready in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def wait_for(self, what: str, probe: Any, *, timeout: float = 30.0, every: float = 0.1) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = probe()
            if got:
                return got
            time.sleep(every)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log_path.read_text()[-3000:]}")

    def incidents(self) -> list[dict[str, Any]]:
        resp = self.request("GET", "/api/incidents")
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 60.0) -> tuple[int, float]:
        """Send ``sig``; the exit status and the seconds it took."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        return rc, time.monotonic() - started

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    land(folder)
    return folder


@pytest.fixture
def schema(tmp_path: Path) -> Path:
    path = tmp_path / "schema.yaml"
    path.write_text(high_res_sample_schema())
    return path


@pytest.fixture
def job(landing: Path, schema: Path) -> dict[str, Any]:
    return {
        "pipeline": "ingestion",
        "dataset": "ds",
        "source": str(landing),
        "schema": str(schema),
        "schedule": {"interval_s": 3600},
        "run_at_start": True,
    }


@pytest.fixture
def daemon_proc(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon (not started) with the API token set; the test writes its config."""
    proc = DaemonProcess(home=tmp_path / "ws", config=tmp_path / "daemon.yaml", log_dir=tmp_path,
                         env={"DATAOPS_API_TOKEN": TOKEN})
    yield proc
    proc.close()


def open_daemon(tmp_path: Path, job: dict[str, Any], *, api_token: str | None = None, **options: Any) -> Any:
    """An in-process daemon (no scheduler, no HTTP server) over a fresh workspace."""
    from agents import AgentSettings
    from app.daemon import Daemon, DaemonConfig
    from app.settings import load_settings
    from pipelines.runtime import Runtime

    cfg = DaemonConfig.model_validate(
        {"incident_memory": False, "jobs": [job], **options,
         "agents": AgentSettings(validate_poll_s=0.05, validate_timeout_s=5)}
    )
    rt = Runtime.open(load_settings(home=tmp_path / "ws", api_token=api_token))
    return Daemon(rt, cfg, agent_settings=cfg.agents).open()


@pytest.fixture
def daemon(tmp_path: Path, job: dict[str, Any]) -> Iterator[Any]:
    d = open_daemon(tmp_path, job, api_token=TOKEN)
    yield d
    d.close()
    d.rt.close()
