"""``dataops check`` on a really ingested dataset."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

import app.cli
from app.errors import InputError, NotFoundError
from app.settings import load_settings
from pipelines.ingestion import ingest, make_sample_dataset
from pipelines.quality import list_results, suite_for
from pipelines.runtime import Runtime


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Runtime]]:
    tmp_path = tmp_path_factory.mktemp("check_cli")
    sample = make_sample_dataset(tmp_path / "in", n_images=8, n_audio=1, n_text=2)
    rt = Runtime.open(load_settings(home=tmp_path / "ws"))
    summary = ingest(rt, str(sample.folder), "photos")
    assert summary.status == "succeeded" and summary.accepted == 11
    if not any(c.name == "check" for c in app.cli.app.registered_commands):
        app.cli._register()
    yield tmp_path, rt
    rt.close()


def _run(workspace: tuple[Path, Runtime], *args: str) -> Result:
    home = workspace[0] / "ws"
    return CliRunner().invoke(app.cli.app, ["check", *args], env={"DATAOPS_HOME": str(home), "COLUMNS": "200"})


def test_default_suite_table(workspace: tuple[Path, Runtime]) -> None:
    result = _run(workspace, "photos")
    assert result.exit_code == 0, result.output
    for text in (
        "Checks on photos @ snapshot",
        "11 rows",
        "suite: default",
        "sample_id unique",
        "sha256 is hex",
        "✓ pass",
    ):
        assert text in result.output
    assert "7 checks: 7 passed, 0 failed" in result.output and "results recorded" in result.output
    stored = list_results(workspace[1], dataset="photos")
    assert {r.name for r in stored} >= {"schema", "sample_id unique", "not empty"}


def test_json_output(workspace: tuple[Path, Runtime]) -> None:
    result = _run(workspace, "photos", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["dataset"] == "photos" and payload["row_count"] == 11 and payload["passed"] is True
    assert payload["snapshot_id"] == workspace[1].offline.current_snapshot_id("photos")
    checks = {c["name"]: c for c in payload["checks"]}
    assert len(checks) == 7
    for check in checks.values():
        assert {"name", "severity", "passed", "observed", "expected", "failing_examples"} <= set(check)
    assert checks["not empty"]["observed"] == 11
    assert checks["sample_id unique"]["observed"] == 0.0


def test_trial_suite_fails_critical_and_registers_nothing(workspace: tuple[Path, Runtime]) -> None:
    suite = workspace[0] / "strict.yaml"
    suite.write_text(
        "checks:\n"
        "  - {name: images only, type: in_set, column: modality, values: [image]}\n"
        "  - {name: small, type: range, column: size_bytes, max: 10, severity: info}\n"
    )
    before = len(list_results(workspace[1], dataset="photos", limit=10_000))
    result = _run(workspace, "photos", "--suite", str(suite))
    assert result.exit_code == 1, result.output
    assert "✗ FAIL" in result.output and "Failing examples: images only" in result.output
    assert "1 critical" in result.output and "results recorded" not in result.output
    assert suite_for(workspace[1], "photos").origin == "default"
    assert len(list_results(workspace[1], dataset="photos", limit=10_000)) == before
    assert _run(workspace, "photos", "--dry-run").exit_code == 0
    assert len(list_results(workspace[1], dataset="photos", limit=10_000)) == before

    payload = json.loads(_run(workspace, "photos", "--suite", str(suite), "--json").output)
    images = payload["checks"][0]
    assert images["passed"] is False and images["unexpected_count"] == 3  # 1 audio + 2 text samples
    assert images["failing_examples"] and payload["recorded"] is False


def test_non_critical_failures_exit_zero_and_save_registers(workspace: tuple[Path, Runtime]) -> None:
    suite = workspace[0] / "soft.yaml"
    suite.write_text("checks:\n  - {name: lots, type: row_count, min: 1000, severity: warning}\n")
    result = _run(workspace, "photos", "--suite", str(suite), "--save", "--examples", "1")
    assert result.exit_code == 0, result.output
    assert "1 warning" in result.output and "results recorded" in result.output
    assert [c.name for c in suite_for(workspace[1], "photos").checks] == ["lots"]
    events = workspace[1].events.list(types=["check_failed"])
    assert events[-1].data["name"] == "lots" and events[-1].level == "warning"
    assert _run(workspace, "photos").exit_code == 0  # the registered suite now runs by default
    from pipelines.quality import remove_suite

    remove_suite(workspace[1], "photos")


def test_errors(workspace: tuple[Path, Runtime]) -> None:
    result = _run(workspace, "nope")
    assert result.exit_code == 1
    assert isinstance(result.exception, NotFoundError) and "unknown dataset 'nope'" in str(result.exception)
    result = _run(workspace, "photos", "--save")
    assert isinstance(result.exception, InputError) and "--save needs --suite" in str(result.exception)
    bad = workspace[0] / "bad.yaml"
    bad.write_text("checks:\n  - {type: range, column: q}\n")
    result = _run(workspace, "photos", "--suite", str(bad))
    assert isinstance(result.exception, InputError)
    assert str(result.exception).startswith(f"{bad}: checks[0]")
    assert _run(workspace, "photos", "--snapshot", "42").exit_code == 1


def test_parquet_file(workspace: tuple[Path, Runtime]) -> None:
    path = workspace[0] / "snap.parquet"
    pq.write_table(workspace[1].offline.scan("photos"), path)
    result = _run(workspace, str(path), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["row_count"] == 11 and payload["passed"] and payload["recorded"] is False
