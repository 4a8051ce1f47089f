"""The annotation and enrichment playbooks: which signatures their pipelines'
metrics and logs fire, and the steps rendered from an incident's evidence."""

from __future__ import annotations

from typing import Any

import pytest

from agents import config_models
from app.taxonomy import RootCause
from guardrails import load_policy
from guardrails._bounds import bounds_refusal
from pipelines.runtime import bounds_of
from playbooks import PlaybookCatalog, evidence_lookups, render
from tests.playbooks._helpers import check, ev, fired, log, metric
from tools import Signal

RC = RootCause


def _strongest(catalog: PlaybookCatalog, signals: list[Signal], pipeline: str) -> dict[RootCause, tuple[float, str]]:
    """Root cause -> (highest weight, the playbook of that signature)."""
    out: dict[RootCause, tuple[float, str]] = {}
    for pb, sig in catalog.signatures(pipeline):
        if sig.match(signals) is not None and sig.weight > out.get(sig.root_cause, (0.0, ""))[0]:
            out[sig.root_cause] = (sig.weight, pb.id)
    return out


def _team(*agreements: tuple[str, float, int]) -> list[Signal]:
    out: list[Signal] = []
    for name, agreement, outlier in agreements:
        out.append(metric("annotator_agreement", agreement, annotator=name))
        out.append(metric("annotator_outlier", outlier, annotator=name))
    return out


def _context(pipeline: str, signals: list[Signal], **config: Any) -> dict[str, Any]:
    return {
        "config": config_models()[pipeline](**config).model_dump(),
        "pipeline": pipeline,
        "dataset": "ds",
        "incident": {"id": "inc-7"},
        "attempt": 1,
        **evidence_lookups(signals),
    }


# -- annotation ---------------------------------------------------------------
RANDOM_ANNOTATOR = [metric("annotation_agreement", 0.33), *_team(("a", 0.95, 0), ("b", 0.94, 0), ("c", 0.11, 1))]
AMBIGUOUS_CLASS = [
    metric("annotation_agreement", 0.31),
    metric("annotation_majority_share", 0.62),
    metric("autolabel_audit_error_rate", 0.27),
    *_team(("a", 0.66, 0), ("b", 0.61, 0), ("c", 0.68, 0)),
]
CONFIDENT_BUT_WRONG = [
    metric("annotation_agreement", 0.81),
    metric("autolabel_confidence_mean", 0.97),
    metric("autolabel_audit_error_rate", 0.31),
    *_team(("a", 0.95, 0), ("b", 0.93, 0)),
]
SURGE = [
    metric("annotation_backlog", 14230),
    metric("annotation_backlog_age_s", 219600),
    metric("annotation_throughput_per_h", 118),
    metric("annotation_forecast_clear_h", 120.6),
]


def test_one_outlier_annotator_points_to_quarantine(catalog: PlaybookCatalog) -> None:
    found = _strongest(catalog, RANDOM_ANNOTATOR, "annotation")
    assert found[RC.ANNOTATION_QUALITY] == (0.9, "quarantine_annotator")
    assert RC.MODEL_DEGRADATION not in found


def test_team_wide_disagreement_points_to_expert_review_not_the_model(catalog: PlaybookCatalog) -> None:
    found = _strongest(catalog, AMBIGUOUS_CLASS, "annotation")
    assert found[RC.ANNOTATION_QUALITY] == (0.85, "route_to_expert_review")
    # People who disagree among themselves cannot judge the model.
    assert RC.MODEL_DEGRADATION not in found


def test_confident_but_overruled_model_points_to_a_stricter_threshold(catalog: PlaybookCatalog) -> None:
    found = _strongest(catalog, CONFIDENT_BUT_WRONG, "annotation")
    assert found == {RC.MODEL_DEGRADATION: (0.85, "raise_autolabel_threshold")}


def test_gold_check_and_collapse_logs_point_to_the_labeler(catalog: PlaybookCatalog) -> None:
    assert fired(catalog, [check("autolabel_precision_vs_gold", observed=0.71, expected=0.9)], "annotation")[
        RC.MODEL_DEGRADATION
    ] >= 0.8
    collapse = [log("warning", "prelabel-worker: pre-labeler predicts the same class for 94% of proposals (car)")]
    assert _strongest(catalog, collapse, "annotation")[RC.MODEL_DEGRADATION][1] == "raise_autolabel_threshold"


def test_annotation_backlog_is_escalated_with_its_figures(catalog: PlaybookCatalog) -> None:
    found = _strongest(catalog, SURGE, "annotation")
    assert found == {RC.BACKLOG: (0.8, "escalate_only")}
    sig = next(s for pb, s in catalog.signatures("annotation") if pb.id == "escalate_only" and s.weight == 0.8
               and s.root_cause == RC.BACKLOG)
    note = " ".join(str(render(sig.note, evidence_lookups(SURGE))).split())
    assert "14230 tasks" in note and "61.0 h" in note and "118.0 tasks/h" in note and "120.6 h" in note
    # Workers do not annotate: scale_workers is not an annotation playbook.
    assert all(pb.id != "scale_workers" for pb, _ in catalog.signatures("annotation"))


def test_healthy_noise_fires_nothing_specific(catalog: PlaybookCatalog) -> None:
    noisy = [
        metric("annotation_agreement", 0.52),
        metric("autolabel_audit_error_rate", 0.07),
        metric("annotation_forecast_clear_h", 5.9),
        metric("annotation_backlog_age_s", 25200),
        *_team(("a", 0.84, 0), ("b", 0.8, 0), ("c", 0.71, 0)),
    ]
    found = _strongest(catalog, noisy, "annotation")
    assert RC.MODEL_DEGRADATION not in found and RC.BACKLOG not in found
    assert found.get(RC.ANNOTATION_QUALITY, (0.0, ""))[1] in ("", "escalate_only")


def test_quarantine_takes_the_annotator_from_the_evidence(catalog: PlaybookCatalog) -> None:
    steps = catalog.render_steps("quarantine_annotator", _context("annotation", RANDOM_ANNOTATOR))
    assert [s.tool for s in steps] == ["quarantine_annotator", "retry_stage", "notify"]
    assert steps[0].args["annotator"] == "c" and "0.11" in steps[0].args["reason"]
    assert "quarantined annotator c" in steps[2].args["message"]


@pytest.mark.parametrize(("current", "expected"), [(0.95, 0.98), (0.9, 0.945), (0.97, 0.99), (0.99, 0.99)])
def test_raised_threshold_stays_within_the_guardrails(catalog: PlaybookCatalog, current: float, expected: float) -> None:
    steps = catalog.render_steps(
        "raise_autolabel_threshold", _context("annotation", CONFIDENT_BUT_WRONG, autolabel_threshold=current)
    )
    assert steps[0].args["key"] == "autolabel_threshold"
    assert steps[0].args["value"] == pytest.approx(expected)
    bounds = {p: bounds_of(m) for p, m in config_models().items()}
    assert bounds_refusal(load_policy(), bounds, "annotation", "autolabel_threshold", steps[0].args["value"], current) is None


def test_expert_review_routes_every_non_unanimous_task(catalog: PlaybookCatalog) -> None:
    steps = catalog.render_steps("route_to_expert_review", _context("annotation", AMBIGUOUS_CLASS))
    assert (steps[0].tool, steps[0].args["key"], steps[0].args["value"]) == ("set_config", "review_agreement_below", 1.0)


# -- enrichment ---------------------------------------------------------------
EMBED_FAILS = [metric("enrichment_embedding_failure_rate", 0.995), metric("enrichment_model_errors", 38, model="clip")]


def test_failing_embeddings_point_to_the_fallback(catalog: PlaybookCatalog) -> None:
    assert _strongest(catalog, EMBED_FAILS, "enrichment")[RC.MODEL_DEGRADATION] == (0.85, "fallback_model")


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        ("embed: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB", RC.RESOURCE_EXHAUSTION),
        ("embed: httpx.ReadTimeout: timed out waiting for http://embed-server:8000/v1/embeddings", RC.TRANSIENT_ERROR),
    ],
)
def test_memory_and_network_failures_are_not_the_model(catalog: PlaybookCatalog, line: str, cause: RootCause) -> None:
    found = fired(catalog, [*EMBED_FAILS, log("error", line)], "enrichment")
    assert RC.MODEL_DEGRADATION not in found and cause in found


def test_fallback_picks_the_failing_model(catalog: PlaybookCatalog) -> None:
    embedding = catalog.render_steps("fallback_model", _context("enrichment", EMBED_FAILS))
    labeler_signals = [metric("enrichment_embedding_failure_rate", 0.0), metric("enrichment_autolabel_confidence_mean", 0.19)]
    labeler = catalog.render_steps("fallback_model", _context("enrichment", labeler_signals))
    no_metrics = catalog.render_steps(
        "fallback_model", _context("enrichment", [ev("stage_failed", stage="embed", error="expected dimension 384, got 768")])
    )
    assert [s.args["kind"] for s in (embedding[0], labeler[0], no_metrics[0])] == ["embedding", "labeler", "embedding"]
    assert "auto-labeler" in labeler[2].args["message"] and "embedding model" in embedding[2].args["message"]


def test_one_issue_spike_is_bad_input_but_a_grayscale_dataset_is_not(catalog: PlaybookCatalog) -> None:
    spike = [metric("enrichment_issue_rate", 0.57, issue="blurry"), metric("enrichment_issue_rate", 0.05, issue="dark")]
    assert _strongest(catalog, spike, "enrichment")[RC.DATA_QUALITY] == (0.8, "pause_and_quarantine")
    digits = [metric("enrichment_issue_rate", 1.0, issue="grayscale"), metric("enrichment_issue_rate", 1.0, issue="odd_size")]
    assert RC.DATA_QUALITY not in fired(catalog, digits, "enrichment")


def test_outputs_of_a_withdrawn_model_point_to_reenrich(catalog: PlaybookCatalog) -> None:
    stale = [check("embedding_model_current", observed=48200, expected=0)]
    assert _strongest(catalog, stale, "enrichment")[RC.MODEL_DEGRADATION] == (0.9, "reenrich")
    line = [log("error", "label-audit: 3,400 records were labelled by the labeler model since replaced; re-enrichment needed")]
    assert _strongest(catalog, line, "enrichment")[RC.MODEL_DEGRADATION][1] == "reenrich"
