"""Live mode: the real ingestion pipeline under the agents while real faults strike."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from app.cli._eval import register
from app.errors import InputError
from evals import run_live


@pytest.mark.slow
def test_live_faults_are_detected_fixed_and_nothing_is_lost() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["eval", "live", "--faults", "transient_source_errors,bad_config", "--json",
                                      "--memory", "off"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    t = data["totals"]
    assert t["faults"] == 2 and t["records_lost"] == 0 and t["unsafe_actions"] == 0
    assert t["detection_rate"] == 1.0 and t["root_cause_accuracy"] == 1.0 and t["decision_accuracy"] == 1.0
    assert t["mean_detection_s"] is not None and t["mean_detection_s"] >= 0
    transient, config = data["faults"]
    assert transient["expected"] == {"root_cause": "transient_error", "decision": "auto_fix",
                                     "playbook": "retry_with_backoff", "resolved": True}
    assert transient["actual"]["status"] == "resolved" and all(transient["scores"].values())
    assert config["actual"]["playbook"] == "restore_config" and config["resolve_s"] is not None
    a = data["accounting"]
    assert a["read"] == a["accepted"] + a["duplicates"] + a["quarantined"] and a["files_missing"] == 0


def test_unknown_faults_are_refused() -> None:
    with pytest.raises(InputError, match="unknown fault 'gremlins'"):
        run_live(["gremlins"])
    with pytest.raises(InputError, match="no faults given"):
        run_live([])
