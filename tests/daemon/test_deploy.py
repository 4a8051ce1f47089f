"""The deployment examples agree with the daemon: the config they ship
validates, the probes hit real routes, and the stop grace covers the
daemon's shutdown bound."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import yaml

from app.daemon import load_daemon_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _manifests() -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "dataops.yaml").read_text()))
    return {d["kind"]: d for d in docs}


def test_the_kubernetes_example(tmp_path: Path) -> None:
    kinds = _manifests()
    assert set(kinds) == {"ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment", "Service"}
    config = tmp_path / "daemon.yaml"
    config.write_text(kinds["ConfigMap"]["data"]["daemon.yaml"])
    cfg = load_daemon_config(config)
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"]["type"] == "Recreate"
    pod = deployment["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > cfg.shutdown_timeout_s
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"] for e in container["env"]} | set(kinds["Secret"]["stringData"])
    assert {"DATAOPS_DAEMON_CONFIG", "DATAOPS_API_TOKEN", "DATAOPS_DATABASE_URL", "DATAOPS_SLACK_SIGNING_SECRET"} <= env
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == "http"


def test_the_systemd_unit() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string((DEPLOY / "systemd" / "dataops.service").read_text())
    service = unit["Service"]
    assert service["ExecStart"].split()[1:3] == ["daemon", "--host"]
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert float(service["TimeoutStopSec"]) > load_daemon_config(None).shutdown_timeout_s
