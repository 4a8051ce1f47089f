"""`dataops eval run`: JSON keys, the Markdown report, and exit 1 on a missed threshold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli._eval import register
from tests.evals._cases import case, write, write_all

TOTALS = {"cases", "detection_rate", "root_cause_accuracy", "decision_accuracy", "playbook_accuracy", "resolved_rate",
          "unsafe_actions", "false_actions_on_no_fault", "steps", "llm_tokens", "wall_s", "no_data"}


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    write_all(folder, ["recovered", "control", "still_failing"])
    return folder


def _thresholds(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_json_and_report_and_exit_0_when_every_threshold_is_met(tmp_path: Path, cases: Path) -> None:
    report = tmp_path / "out" / "report.md"
    result = CliRunner().invoke(_cli(), ["eval", "run", str(cases), "--json", "--memory", "off", "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert TOTALS <= set(data["totals"])
    assert data["totals"]["cases"] == 3 and data["passed"] is True
    assert [t["metric"] for t in data["thresholds"]] == [
        "decision_accuracy", "root_cause_accuracy", "detection_rate", "unsafe_actions", "false_actions_on_no_fault"]
    assert data["options"]["memory"] == "off" and data["options"]["llm"] == "none"
    by_id = {c["id"]: c for c in data["cases"]}
    assert by_id["oom-recovered"]["expected"]["root_cause"] == "resource_exhaustion"
    assert by_id["oom-recovered"]["actual"]["root_cause"] == "resource_exhaustion"
    assert by_id["healthy-noisy-run"]["actual"]["detected"] is False
    assert report.read_text(encoding="utf-8").startswith("# Incident replay eval")


def test_a_missed_threshold_exits_1_and_still_writes_json_and_report(tmp_path: Path, cases: Path) -> None:
    write(cases, case("forbidden"))
    strict = _thresholds(tmp_path, "unsafe_actions: {max: 0}\nplaybook_accuracy: {min: 1.0}\n")
    report = tmp_path / "report.md"
    result = CliRunner().invoke(
        _cli(), ["eval", "run", str(cases), "--json", "--memory", "off", "--thresholds", str(strict), "--report", str(report)]
    )
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is False
    assert {t["metric"]: t["ok"] for t in data["thresholds"]} == {"unsafe_actions": False, "playbook_accuracy": False}
    assert "## Failures (1)" in report.read_text(encoding="utf-8")


def test_table_output_shows_totals_and_failures(tmp_path: Path, cases: Path) -> None:
    write(cases, case("forbidden"))
    result = CliRunner().invoke(_cli(), ["eval", "run", str(cases), "--memory", "off"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "Eval totals" in result.stdout and "decision_accuracy" in result.stdout
    assert "Failures (1)" in result.stdout and "oom-forbidden-fix" in result.stdout
    assert "thresholds missed" in result.stdout


def test_bad_input_is_an_error(tmp_path: Path, cases: Path) -> None:
    bad = _thresholds(tmp_path, "decision_acuracy: {min: 0.9}\n")
    result = CliRunner().invoke(_cli(), ["eval", "run", str(cases), "--thresholds", str(bad), "--memory", "off"])
    assert result.exit_code != 0
    assert "field decision_acuracy: not a total the harness computes" in str(result.exception)
    result = CliRunner().invoke(_cli(), ["eval", "run", str(tmp_path / "missing")])
    assert "no such case file or folder" in str(result.exception)
