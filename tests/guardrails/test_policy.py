from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import ConfigError
from guardrails import ACTIONS, Risk, default_policy_path, load_policy
from guardrails._bounds import bounds_refusal, effective_bounds
from tests.guardrails.conftest import MODEL_BOUNDS, with_policy


def test_shipped_policy_rates_every_action() -> None:
    policy = load_policy()
    assert default_policy_path().name == "policy.yaml"
    assert set(ACTIONS) <= set(policy.risk)
    assert policy.risk_of("retry_stage") is Risk.LOW
    assert policy.risk_of("rollback_table") is Risk.CRITICAL
    assert policy.risk_of("no_such_action") is None
    assert policy.max_attempts_per_incident == 3
    assert policy.max_in_flight_per_pipeline == 1
    assert policy.dry_run is False
    assert policy.approval_timeout_s > 0
    assert policy.rate_limits.global_.max_actions >= policy.rate_limits.per_pipeline.max_actions


def test_risk_is_ordered() -> None:
    assert Risk.LOW.rank < Risk.MEDIUM.rank < Risk.HIGH.rank < Risk.CRITICAL.rank


def test_shipped_shared_bounds_name_real_tunables() -> None:
    config = pytest.importorskip("pipelines.runtime._config")
    declared = config.bounds_of(config.PipelineConfig)
    assert set(load_policy().bounds["*"]) <= set(declared)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("risk: {notify: severe}\n", "risk.notify"),
        ("risk: {notify: low}\nmax_attempts_per_incident: 0\n", "max_attempts_per_incident"),
        (
            "risk: {notify: low}\nrate_limits: {global: {max_actions: 0, window_s: 60}}\n",
            "rate_limits.global.max_actions",
        ),
        ("risk: {notify: low}\nbounds: {ingestion: {workers: {min: 9, max: 2}}}\n", "bounds.ingestion.workers"),
        ("risk: {notify: low}\nbounds: {ingestion: {workers: {max_step_factor: 0.5}}}\n", "max_step_factor"),
        ("risk: {notify: low}\nmax_in_flight_per_pipeline: 2\n", "max_in_flight_per_pipeline"),
        ("risk: {notify: low}\nnon_mutating: [probe_source]\n", "non_mutating"),
        ("risk: {notify: low}\ndry_runn: true\n", "dry_runn"),
        ("dry_run: true\n", "risk"),
    ],
)
def test_invalid_policy_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    message = str(err.value)
    assert str(path) in message
    assert field in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_policy(missing)
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_policy(_write(tmp_path, "risk: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_policy(_write(tmp_path, "- a list\n"))


def test_minimal_policy_gets_defaults(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, "risk: {notify: low, probe_source: low}\n"))
    assert policy.max_attempts_per_incident == 3
    assert policy.bounds == {}


def test_bounds_intersect_model_shared_and_pipeline_entries() -> None:
    policy = load_policy()
    # Model [0.5, 1.0]; policy [0.9, 0.99].
    eff = effective_bounds(policy, MODEL_BOUNDS, "annotation", "autolabel_threshold")
    assert eff is not None and (eff.min, eff.max, eff.max_step_factor) == (0.9, 0.99, 1.05)
    # Model [1, 32]; "*" [1, 16], step 2.
    eff = effective_bounds(policy, MODEL_BOUNDS, "ingestion", "workers")
    assert eff is not None and (eff.min, eff.max, eff.max_step_factor) == (1, 16, 2.0)
    # A pipeline entry tightens the "*" one.
    tight = with_policy(policy, bounds={"*": {"workers": {"max": 16}}, "ingestion": {"workers": {"max": 8}}})
    eff = effective_bounds(tight, MODEL_BOUNDS, "ingestion", "workers")
    assert eff is not None and eff.max == 8
    assert effective_bounds(policy, MODEL_BOUNDS, "ingestion", "no_such_key") is None


@pytest.mark.parametrize(
    ("key", "new", "old", "fragment"),
    [
        ("workers", 4, 2, None),
        ("workers", 17, 16, "above the maximum 16"),
        ("workers", 0, 1, "below the minimum 1"),
        ("workers", 8, 2, "step factor 2"),
        ("workers", 1, 4, "step factor 2"),
        ("workers", "many", 2, "not a finite number"),
        ("workers", float("nan"), 2, "not a finite number"),
        ("workers", True, 2, "not a finite number"),
        ("workers", None, 2, "no new value"),
        ("workers", 3, None, None),
        ("retry_backoff_s", 0.5, 0.0, None),
        ("retry_backoff_s", 45.0, 1.0, "above the maximum 30"),
        ("colour", 1, None, "not a tunable"),
    ],
)
def test_bounds_refusals(key: str, new: object, old: object, fragment: str | None) -> None:
    why = bounds_refusal(load_policy(), MODEL_BOUNDS, "ingestion", key, new, old)
    if fragment is None:
        assert why is None
    else:
        assert why is not None and fragment in why


def test_step_across_zero_is_unbounded() -> None:
    policy = with_policy(load_policy(), bounds={"ingestion": {"retry_backoff_s": {"max_step_factor": 4}}})
    why = bounds_refusal(policy, MODEL_BOUNDS, "ingestion", "retry_backoff_s", 0.5, 0.0)
    assert why is not None and "unbounded" in why


def test_disjoint_bounds_allow_nothing() -> None:
    policy = with_policy(load_policy(), bounds={"ingestion": {"workers": {"min": 40, "max": 50}}})
    why = bounds_refusal(policy, MODEL_BOUNDS, "ingestion", "workers", 45, 40)
    assert why is not None and "do not overlap" in why
