"""The catalogue: names, building by name, describing, applying in turn, `chaos list`."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from app.cli._chaos import register
from app.errors import InputError
from app.taxonomy import RootCause
from evals.faults import FAULTS, Fault, apply_all, faults_for, heal_all, make_fault
from pipelines.ingestion import ingestion_job
from tests.evals.faults._world import World, failed_stage

EXPECTED = {
    "transient_source_errors": ("transient_error", "retry_with_backoff"),
    "source_down": ("upstream_outage", "wait_for_upstream"),
    "memory_blowup": ("resource_exhaustion", "reduce_batch_size"),
    "bad_config": ("config_error", "restore_config"),
    "schema_change": ("schema_change", "pause_and_quarantine"),
    "corrupt_file_flood": ("data_quality", "pause_and_quarantine"),
    "duplicate_flood": ("duplicate_flood", "pause_and_quarantine"),
    "bad_table_write": ("data_corruption", "rollback_snapshot"),
    "stage_exception": ("code_defect", "escalate_only"),
    "annotator_random": ("annotation_quality", "quarantine_annotator"),
    "autolabel_degraded": ("model_degradation", "raise_autolabel_threshold"),
    "annotation_backlog_surge": ("backlog", "escalate_only"),
    "embedding_model_failure": ("model_degradation", "fallback_model"),
    "embedding_oom": ("resource_exhaustion", "reduce_batch_size"),
    "enrichment_issue_spike": ("data_quality", "pause_and_quarantine"),
}
PIPELINES = {name: "ingestion" for name in list(EXPECTED)[:9]} | {
    "annotator_random": "annotation",
    "autolabel_degraded": "annotation",
    "annotation_backlog_surge": "annotation",
    "embedding_model_failure": "enrichment",
    "embedding_oom": "enrichment",
    "enrichment_issue_spike": "enrichment",
}


def test_the_faults_and_what_they_expect() -> None:
    assert list(FAULTS) == list(EXPECTED)
    for name, cls in FAULTS.items():
        assert issubclass(cls, Fault) and cls.name == name
        assert isinstance(cls.expected_root_cause, RootCause)
        assert (str(cls.expected_root_cause), cls.expected_playbook) == EXPECTED[name]
        assert cls.pipeline == PIPELINES[name] and cls.description
        fault = make_fault(name)
        assert isinstance(fault, cls) and not fault.active and not fault.applied
        described = fault.describe()
        assert described["name"] == name and described["active"] is False and described["job"] is None
        json.dumps(described)
    assert list(faults_for("annotation")) == ["annotator_random", "autolabel_degraded", "annotation_backlog_surge"]
    assert list(faults_for("enrichment")) == ["embedding_model_failure", "embedding_oom", "enrichment_issue_spike"]
    assert faults_for("training") == {}


def test_make_fault_rejects_unknown_names_parameters_and_values() -> None:
    with pytest.raises(InputError, match="unknown fault 'disk_full'; known faults: transient_source_errors, source_down"):
        make_fault("disk_full")
    with pytest.raises(InputError, match=r"no parameter 'limt' \(it takes: limit, deploy_batch_size\)"):
        make_fault("memory_blowup", limt=8)
    with pytest.raises(InputError, match="no parameter 'x' .*no parameters"):
        make_fault("duplicate_flood", x=1)
    with pytest.raises(InputError, match="fraction must be in"):
        make_fault("corrupt_file_flood", fraction=1.5)
    with pytest.raises(InputError, match="heal_after_probes"):
        make_fault("source_down", heal_after_probes=0)
    with pytest.raises(InputError, match="deploy_batch_size must be above limit"):
        make_fault("memory_blowup", limit=64, deploy_batch_size=32)
    assert make_fault("memory_blowup", limit=8).params() == {"limit": 8, "deploy_batch_size": None}


def test_apply_checks_the_job(world: World) -> None:
    fault = make_fault("stage_exception")
    other = ingestion_job("ds", "/nowhere")
    other.pipeline = "annotation"
    with pytest.raises(InputError, match="targets ingestion jobs"):
        fault.apply(other, world.rt)
    fault.apply(world.job, world.rt)
    with pytest.raises(InputError, match="already applied"):
        fault.apply(world.job, world.rt)
    assert fault.describe()["job"] == "ingestion/ds"


def test_apply_all_then_heal_all(world: World) -> None:
    faults = apply_all(
        [make_fault("transient_source_errors", failures=3), make_fault("stage_exception")], world.job, world.rt
    )
    assert all(f.active for f in faults[1:]) and len(world.job.source_wrappers) == len(world.job.spec_wrappers) == 1

    assert failed_stage(world, world.run()).stage == "read"  # the three resets exhaust one run's retries
    assert failed_stage(world, world.run()).stage == "exif_orient"  # then the defect shows
    heal_all(faults)
    assert not any(f.active for f in faults)
    assert world.job.source_wrappers == [] and world.job.spec_wrappers == []
    assert world.run().status == "succeeded"
    world.assert_nothing_lost()


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_chaos_list_table() -> None:
    result = CliRunner().invoke(_cli(), ["chaos", "list"], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    for header in ("name", "pipeline", "expected root cause", "expected playbook", "description"):
        assert header in result.output
    for name, (cause, playbook) in EXPECTED.items():
        line = next(line for line in result.output.splitlines() if f" {name} " in line)
        assert PIPELINES[name] in line and cause in line and playbook in line


def test_chaos_list_json() -> None:
    result = CliRunner().invoke(_cli(), ["chaos", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == list(EXPECTED)
    for row in rows:
        assert (row["expected_root_cause"], row["expected_playbook"]) == EXPECTED[row["name"]]
        assert row["pipeline"] == PIPELINES[row["name"]] and row["description"]
    assert rows[1]["params"] == {"heal_after_probes": 2, "upstream": "s3://raw-uploads"}
