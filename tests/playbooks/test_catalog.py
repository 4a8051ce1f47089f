"""The shipped catalogue: ids, the policy, lookups and rendered steps."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import NotFoundError, PlaybookError
from app.taxonomy import Decision, RootCause
from guardrails import load_policy
from guardrails._bounds import bounds_refusal
from pipelines.ingestion import IngestionConfig
from pipelines.runtime import bounds_of
from playbooks import Playbook, PlaybookCatalog

IDS = [
    "escalate_only",
    "fallback_model",
    "pause_and_quarantine",
    "quarantine_annotator",
    "raise_autolabel_threshold",
    "reduce_batch_size",
    "reenrich",
    "restore_config",
    "retry_with_backoff",
    "rollback_snapshot",
    "route_to_expert_review",
    "scale_workers",
    "wait_for_upstream",
]

POLICY = {
    "transient_error": ("retry_with_backoff", "auto_fix"),
    "resource_exhaustion": ("reduce_batch_size", "auto_fix_notify"),
    "config_error": ("restore_config", "auto_fix_notify"),
    "upstream_outage": ("wait_for_upstream", "auto_fix_notify"),
    "schema_change": ("pause_and_quarantine", "auto_fix_notify"),
    "data_quality": ("pause_and_quarantine", "auto_fix_notify"),
    "duplicate_flood": ("pause_and_quarantine", "auto_fix_notify"),
    "backlog": ("scale_workers", "auto_fix_notify"),
    "data_corruption": ("rollback_snapshot", "escalate"),
    "pii_exposure": ("pause_and_quarantine", "escalate"),
    "data_drift": ("escalate_only", "escalate"),
    "code_defect": ("escalate_only", "escalate"),
    "model_degradation": ("escalate_only", "escalate"),
    "annotation_quality": ("escalate_only", "escalate"),
    "no_fault": (None, "no_action"),
}

# Where a pipeline has its own treatment.
PIPELINE_POLICY = {
    ("backlog", "annotation"): ("escalate_only", "escalate"),
    ("model_degradation", "annotation"): ("raise_autolabel_threshold", "auto_fix_notify"),
    ("model_degradation", "enrichment"): ("fallback_model", "auto_fix_notify"),
    ("annotation_quality", "annotation"): ("route_to_expert_review", "auto_fix_notify"),
}


def _ctx(**config: Any) -> dict[str, Any]:
    return {
        "config": IngestionConfig(**config).model_dump(),
        "pipeline": "ingestion",
        "dataset": "cams",
        "incident": {"id": "inc-1"},
        "attempt": 1,
    }


def test_the_shipped_catalogue_loads(catalog: PlaybookCatalog) -> None:
    assert catalog.ids == IDS
    assert [pb.id for pb in catalog.all()] == IDS
    assert all(isinstance(catalog.get(pid), Playbook) for pid in IDS)


def test_every_root_cause_has_the_policy_mapping(catalog: PlaybookCatalog) -> None:
    assert set(POLICY) == {rc.value for rc in RootCause}
    for rc in RootCause:
        entry = catalog.policy(rc)
        assert (entry.playbook, entry.decision) == (POLICY[rc.value][0], Decision(POLICY[rc.value][1]))
        if entry.playbook is not None:
            assert rc in catalog.get(entry.playbook).root_causes
    assert catalog.policy("backlog") == catalog.policy(RootCause.BACKLOG)


def test_pipelines_have_their_own_treatments(catalog: PlaybookCatalog) -> None:
    for rc in RootCause:
        for pipeline in ("ingestion", "annotation", "enrichment"):
            entry = catalog.policy(rc, pipeline)
            want = PIPELINE_POLICY.get((rc.value, pipeline), POLICY[rc.value])
            assert (entry.playbook, entry.decision) == (want[0], Decision(want[1])), (rc, pipeline)
            if entry.playbook is not None:
                pb = catalog.get(entry.playbook)
                assert rc in pb.root_causes and pipeline in pb.pipelines
    # Ingestion keeps the shared entry, and an unknown pipeline gets it too.
    assert catalog.policy("model_degradation", "ingestion") == catalog.policy("model_degradation")
    assert catalog.policy("backlog", "no_such_pipeline").playbook == "scale_workers"
    assert [pb.id for pb in catalog.for_root_cause("annotation_quality", "annotation")] == [
        "route_to_expert_review",
        "escalate_only",
        "quarantine_annotator",
    ]
    assert [pb.id for pb in catalog.for_root_cause("backlog", "annotation")] == ["escalate_only"]
    assert [pb.id for pb in catalog.for_root_cause("backlog", "enrichment")] == ["scale_workers", "escalate_only"]


def test_changes_nothing_marks_the_notify_only_playbook(catalog: PlaybookCatalog) -> None:
    assert [pid for pid in catalog.ids if catalog.changes_nothing(pid)] == ["escalate_only"]


def test_every_root_cause_but_no_fault_has_a_signature(catalog: PlaybookCatalog) -> None:
    covered = {sig.root_cause for _, sig in catalog.signatures()}
    assert covered == set(RootCause) - {RootCause.NO_FAULT}
    for pb, sig in catalog.signatures():
        assert sig.root_cause in pb.root_causes


def test_get_unknown_lists_the_known_ids(catalog: PlaybookCatalog) -> None:
    with pytest.raises(NotFoundError, match="restart_everything.*escalate_only.*wait_for_upstream"):
        catalog.get("restart_everything")


def test_for_root_cause_puts_the_policy_default_first(catalog: PlaybookCatalog) -> None:
    assert [pb.id for pb in catalog.for_root_cause(RootCause.PII_EXPOSURE)] == ["pause_and_quarantine"]
    assert [pb.id for pb in catalog.for_root_cause("code_defect", "ingestion")] == ["escalate_only"]
    assert catalog.for_root_cause(RootCause.NO_FAULT) == []
    assert catalog.for_root_cause(RootCause.BACKLOG, "no_such_pipeline") == []
    # With two treating playbooks the default leads whatever the ids' order.
    two = PlaybookCatalog(
        {
            "a_other": catalog.get("scale_workers").model_copy(update={"id": "a_other"}),
            "scale_workers": catalog.get("scale_workers"),
        },
        {rc: catalog.policy(rc) for rc in RootCause},
    )
    assert [pb.id for pb in two.for_root_cause(RootCause.BACKLOG)] == ["scale_workers", "a_other"]


def test_signatures_filter_by_pipeline(catalog: PlaybookCatalog) -> None:
    ingestion = {pb.id for pb, _ in catalog.signatures("ingestion")}
    annotation = {pb.id for pb, _ in catalog.signatures("annotation")}
    enrichment = {pb.id for pb, _ in catalog.signatures("enrichment")}
    assert len(catalog.signatures("ingestion")) > 20
    assert len(catalog.signatures()) > len(catalog.signatures("ingestion"))
    assert {"quarantine_annotator", "route_to_expert_review", "raise_autolabel_threshold"} <= annotation
    assert not {"quarantine_annotator", "route_to_expert_review", "fallback_model", "reenrich"} & ingestion
    assert {"fallback_model", "reenrich"} <= enrichment and "scale_workers" not in annotation
    assert catalog.signatures("no_such_pipeline") == []


def test_reduce_batch_size_renders_within_the_guardrail_bounds(catalog: PlaybookCatalog) -> None:
    policy = load_policy()
    model_bounds = {"ingestion": bounds_of(IngestionConfig)}
    steps = catalog.render_steps("reduce_batch_size", _ctx(batch_size=4096))
    assert [s.tool for s in steps] == ["set_config", "retry_stage"]
    assert steps[0].args == {"pipeline": "ingestion", "dataset": "cams", "key": "batch_size", "value": 1024}
    assert bounds_refusal(policy, model_bounds, "ingestion", "batch_size", 1024, 4096) is None
    for old in (2048, 1000, 999, 64, 39, 33, 20, 9, 8):
        value = catalog.render_steps("reduce_batch_size", _ctx(batch_size=old))[0].args["value"]
        assert 8 <= value <= old
        assert bounds_refusal(policy, model_bounds, "ingestion", "batch_size", value, old) is None, (old, value)


def test_scale_workers_doubles_up_to_sixteen(catalog: PlaybookCatalog) -> None:
    policy = load_policy()
    model_bounds = {"ingestion": bounds_of(IngestionConfig)}
    for old, new in ((1, 2), (2, 4), (8, 16), (12, 16), (16, 16)):
        step = catalog.render_steps("scale_workers", _ctx(workers=old))[0]
        assert step.args["workers"] == new
        assert bounds_refusal(policy, model_bounds, "ingestion", "workers", new, old) is None


def test_step_shapes(catalog: PlaybookCatalog) -> None:
    retry = catalog.get("retry_with_backoff").steps
    assert [(s.tool, s.until, s.max_attempts) for s in retry] == [("retry_stage", "ok", 3)]
    assert retry[0].backoff_s > 0 and retry[0].backoff_factor > 1
    wait = catalog.get("wait_for_upstream").steps
    assert [s.tool for s in wait] == ["pause_pipeline", "probe_source", "resume_pipeline", "retry_stage"]
    assert (wait[1].until, wait[1].max_attempts, wait[1].backoff_s, wait[1].backoff_factor) == ("ok", 6, 0.5, 2.0)
    assert [s.tool for s in catalog.get("restore_config").steps] == ["restore_config", "retry_stage"]
    assert [s.tool for s in catalog.get("pause_and_quarantine").steps] == [
        "pause_pipeline",
        "quarantine_batch",
        "notify",
    ]
    assert [s.tool for s in catalog.get("rollback_snapshot").steps] == ["rollback_table", "notify"]
    escalate = catalog.render_steps("escalate_only", _ctx())
    assert [(s.tool, s.args["severity"]) for s in escalate] == [("notify", "critical")]
    assert "inc-1" in escalate[0].args["message"]
    assert catalog.render_steps("rollback_snapshot", _ctx())[1].args["severity"] == "critical"


def test_declared_risk_covers_the_tools(catalog: PlaybookCatalog) -> None:
    policy = load_policy()
    for pb in catalog.all():
        worst = max((policy.risk_of(s.tool) for s in pb.steps), key=lambda r: r.rank)  # type: ignore[union-attr]
        assert pb.risk.rank >= worst.rank
    assert str(catalog.get("rollback_snapshot").risk) == "critical"
    assert str(catalog.get("retry_with_backoff").risk) == "low"


def test_validation_checks(catalog: PlaybookCatalog) -> None:
    checks = {pb.id: [c.check for c in pb.validation] for pb in catalog.all()}
    for pid in ("retry_with_backoff", "reduce_batch_size", "restore_config", "wait_for_upstream", "scale_workers"):
        assert checks[pid] == ["run_succeeded", "no_failing_signals"]
    assert checks["pause_and_quarantine"] == ["no_failing_signals"]
    assert "signal_absent" in checks["rollback_snapshot"]


def test_render_steps_errors_name_the_playbook_and_field(catalog: PlaybookCatalog) -> None:
    with pytest.raises(PlaybookError, match=r"reduce_batch_size.*steps\[0\]\.args.*config"):
        catalog.render_steps("reduce_batch_size", {**_ctx(), "config": {}})
    with pytest.raises(PlaybookError, match=r"scale_workers.*steps\[0\]\.args\.workers"):
        catalog.render_steps("scale_workers", {**_ctx(), "config": {"workers": -3}})


def test_render_rollback_is_none_when_inverses_are_used(catalog: PlaybookCatalog) -> None:
    assert all(catalog.render_rollback(pid, _ctx()) is None for pid in catalog.ids)
