"""Every load-time validation failure is one PlaybookError line naming the
file, the playbook and the field. Bad catalogues are written to tmp_path."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from agents import config_models
from app.errors import ConfigError, PlaybookError
from guardrails import default_policy_path, load_policy
from pipelines.runtime import PipelineConfig, tunable
from playbooks import PlaybookCatalog, default_library_dir, default_policy_file


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the shipped library and policy to break."""
    lib = tmp_path / "library"
    shutil.copytree(default_library_dir(), lib, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    policy = tmp_path / "policy.yaml"
    shutil.copy(default_policy_file(), policy)
    return lib, policy


def _edit(file: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = yaml.safe_load(file.read_text())
    change(data)
    file.write_text(yaml.safe_dump(data, sort_keys=False))


def _load_error(lib: Path, policy: Path, **kwargs: Any) -> str:
    with pytest.raises(PlaybookError) as info:
        PlaybookCatalog.load(lib, policy, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ConfigError)
    return message


def test_the_copy_loads(tree: tuple[Path, Path]) -> None:
    assert len(PlaybookCatalog.load(*tree).ids) == 13


def test_yaml_syntax(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    file = lib / "scale_workers.yaml"
    file.write_text(file.read_text().replace("risk: medium", "risk: [medium"))
    msg = _load_error(lib, policy)
    assert "scale_workers.yaml" in msg and "'scale_workers'" in msg and "(YAML)" in msg and "line" in msg


def test_unknown_field(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "retry_with_backoff.yaml", lambda d: d.update(retries=5))
    msg = _load_error(lib, policy)
    assert "retry_with_backoff.yaml" in msg and "'retry_with_backoff'" in msg and "field retries" in msg


def test_unknown_field_in_a_step(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "retry_with_backoff.yaml", lambda d: d["steps"][0].update(retry_forever=True))
    msg = _load_error(lib, policy)
    assert "'retry_with_backoff'" in msg and "field steps[0].retry_forever" in msg


def test_duplicate_id(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    shutil.copy(lib / "scale_workers.yaml", lib / "zz_scale_workers_copy.yaml")
    msg = _load_error(lib, policy)
    assert "zz_scale_workers_copy.yaml" in msg and "'scale_workers'" in msg and "field id" in msg
    assert "duplicate" in msg and "scale_workers.yaml" in msg


def test_unknown_tool(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "restore_config.yaml", lambda d: d["steps"][1].update(tool="restart_everything"))
    msg = _load_error(lib, policy)
    assert "restore_config.yaml" in msg and "'restore_config'" in msg and "field steps[1].tool" in msg
    assert "restart_everything" in msg and "retry_stage" in msg


def test_args_that_do_not_validate(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "retry_with_backoff.yaml", lambda d: d["steps"][0]["args"].update(stagee="read"))
    msg = _load_error(lib, policy)
    assert "'retry_with_backoff'" in msg and "field steps[0].args.stagee" in msg


def test_rendered_args_that_do_not_validate(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "scale_workers.yaml", lambda d: d["steps"][0]["args"].update(workers="${config.workers - 10}"))
    msg = _load_error(lib, policy)
    assert "scale_workers.yaml" in msg and "'scale_workers'" in msg and "field steps[0].args.workers" in msg


def test_refused_template_in_args(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "escalate_only.yaml", lambda d: d["steps"][0]["args"].update(message="${__import__('os').getcwd()}"))
    msg = _load_error(lib, policy)
    assert "'escalate_only'" in msg and "field steps[0].args" in msg and "__import__" in msg


def test_config_change_above_the_bounds(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "reduce_batch_size.yaml", lambda d: d["steps"][0]["args"].update(value=4096))
    msg = _load_error(lib, policy)
    assert "reduce_batch_size.yaml" in msg and "'reduce_batch_size'" in msg and "field steps[0].args" in msg
    assert "above the maximum" in msg and "2048" in msg


def test_config_change_steps_too_far_from_the_default(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "reduce_batch_size.yaml", lambda d: d["steps"][0]["args"].update(value=8))
    msg = _load_error(lib, policy)
    assert "'reduce_batch_size'" in msg and "step factor of 8" in msg


def test_config_change_of_something_that_is_not_a_tunable(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "reduce_batch_size.yaml", lambda d: d["steps"][0]["args"].update(key="colour", value=3))
    msg = _load_error(lib, policy)
    assert "'reduce_batch_size'" in msg and "'colour' is not a tunable" in msg


def test_declared_risk_below_the_tools(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "reduce_batch_size.yaml", lambda d: d.update(risk="low"))
    msg = _load_error(lib, policy)
    assert "reduce_batch_size.yaml" in msg and "'reduce_batch_size'" in msg and "field risk" in msg
    assert "set_config" in msg and "medium" in msg


def test_risk_follows_the_guardrail_policy_given(tree: tuple[Path, Path], tmp_path: Path) -> None:
    lib, policy = tree
    rules = tmp_path / "guardrails.yaml"
    rules.write_text(default_policy_path().read_text().replace("probe_source: low", "probe_source: high"))
    strict = load_policy(rules)
    msg = _load_error(lib, policy, guardrails_policy=strict)
    assert "'wait_for_upstream'" in msg and "field risk" in msg and "probe_source" in msg


def test_bounds_follow_the_config_models_given(tree: tuple[Path, Path]) -> None:
    class SmallConfig(PipelineConfig):
        workers: int = tunable(2, ge=1, le=3, description="At most three.")

    lib, policy = tree
    models: dict[str, type[BaseModel]] = {**config_models(), "ingestion": SmallConfig}
    msg = _load_error(lib, policy, config_models=models)
    assert "'scale_workers'" in msg and "workers=4 is above the maximum" in msg and "(pipeline ingestion)" in msg


def test_signature_for_a_cause_the_playbook_does_not_treat(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "scale_workers.yaml", lambda d: d["signatures"][0].update(root_cause="data_drift"))
    msg = _load_error(lib, policy)
    assert "'scale_workers'" in msg and "field signatures[0].root_cause" in msg and "data_drift" in msg


def test_invalid_regex(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "scale_workers.yaml", lambda d: d["signatures"][2]["any"][0].update(pattern="consumer lag ("))
    msg = _load_error(lib, policy)
    assert "'scale_workers'" in msg and "field signatures[2].any[0]" in msg and "regular expression" in msg


def test_signature_without_any_or_all(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "scale_workers.yaml", lambda d: d["signatures"][1].pop("any"))
    msg = _load_error(lib, policy)
    assert "'scale_workers'" in msg and "field signatures[1]" in msg and "any or all" in msg


def test_root_cause_without_a_signature(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "wait_for_upstream.yaml", lambda d: d.update(signatures=[]))
    msg = _load_error(lib, policy)
    assert str(lib) in msg and "field signatures" in msg and "upstream_outage" in msg


def test_validation_check_missing_its_part(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "restore_config.yaml", lambda d: d["validation"].append({"check": "check_passes"}))
    msg = _load_error(lib, policy)
    assert "'restore_config'" in msg and "field validation[2]" in msg and "name" in msg


def test_policy_missing_a_root_cause(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(policy, lambda d: d.pop("backlog"))
    msg = _load_error(lib, policy)
    assert "policy.yaml" in msg and "backlog" in msg and "no entry" in msg


def test_policy_naming_an_unknown_playbook(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(policy, lambda d: d["backlog"].update(playbook="add_more_servers"))
    msg = _load_error(lib, policy)
    assert "policy.yaml" in msg and "'backlog'" in msg and "field playbook" in msg and "add_more_servers" in msg


def test_policy_naming_a_playbook_that_does_not_treat_the_cause(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(policy, lambda d: d["backlog"].update(playbook="retry_with_backoff"))
    msg = _load_error(lib, policy)
    assert "'backlog'" in msg and "retry_with_backoff" in msg and "field playbook" in msg


def test_policy_with_an_unknown_root_cause_or_decision(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(policy, lambda d: d.update(cosmic_rays={"playbook": "escalate_only", "decision": "escalate"}))
    assert "cosmic_rays" in _load_error(lib, policy)
    shutil.copy(default_policy_file(), policy)
    _edit(policy, lambda d: d["backlog"].update(decision="yolo"))
    msg = _load_error(lib, policy)
    assert "'backlog'" in msg and "field backlog.decision" in msg


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="not a directory"):
        PlaybookCatalog.load(tmp_path / "nope")


def test_pipeline_override_naming_an_unknown_playbook(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(policy, lambda d: d["backlog"]["pipelines"].update(annotation={"playbook": "hire_people", "decision": "escalate"}))
    msg = _load_error(lib, policy)
    assert "root cause 'backlog'" in msg and "field pipelines.annotation.playbook" in msg and "hire_people" in msg


def test_pipeline_override_with_a_playbook_for_another_pipeline(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(policy, lambda d: d["model_degradation"]["pipelines"].update(annotation={
        "playbook": "fallback_model", "decision": "auto_fix_notify"}))
    msg = _load_error(lib, policy)
    assert "field pipelines.annotation.playbook" in msg and "'fallback_model'" in msg and "on annotation" in msg


def test_pipeline_override_for_an_unknown_pipeline(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(policy, lambda d: d["backlog"]["pipelines"].update(training={"playbook": "escalate_only", "decision": "escalate"}))
    msg = _load_error(lib, policy)
    assert "root cause 'backlog'" in msg and "backlog.pipelines.training" in msg


def test_pipeline_override_no_action_with_a_playbook(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(policy, lambda d: d["backlog"]["pipelines"].update(annotation={
        "playbook": "escalate_only", "decision": "no_action"}))
    msg = _load_error(lib, policy)
    assert "backlog.pipelines.annotation" in msg and "no_action takes no playbook" in msg


def test_signature_note_naming_something_unknown(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "escalate_only.yaml", lambda d: d["signatures"][-1].update(note="backlog ${config.workers} workers"))
    msg = _load_error(lib, policy)
    assert "'escalate_only'" in msg and "note" in msg and "unknown name 'config'" in msg


def test_step_arguments_from_evidence_are_checked_against_the_tool(tree: tuple[Path, Path]) -> None:
    lib, policy = tree
    _edit(lib / "fallback_model.yaml", lambda d: d["steps"][0]["args"].update(kind="${latest.x.model}"))
    msg = _load_error(lib, policy)
    assert "'fallback_model'" in msg and "steps[0].args.kind" in msg

