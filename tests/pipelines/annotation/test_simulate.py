"""The active-learning simulation on digits: label quality from noisy
annotators, agreement statistics, and the labels active learning saves."""

from __future__ import annotations

import json

import pytest

from app.errors import InputError
from pipelines.annotation import (
    CurvePoint,
    compare,
    label_savings,
    labels_to_reach,
    mean_curve,
    simulate,
)

REQUIRED = {"strategy", "labels_bought", "model_accuracy", "consensus_accuracy", "fleiss_kappa", "krippendorff_alpha", "cost", "curve"}


def test_three_annotators_at_85_percent_give_95_percent_labels() -> None:
    # Big batches: the labels do not depend on the schedule, and fewer rounds train fewer models.
    report = simulate("digits", budget=300, strategy="random", annotators=3, annotator_accuracy=0.85, seed=0, batch_size=100, cost_per_label=0.05)
    assert report.labels_bought == 300
    assert report.consensus_accuracy >= 0.95
    assert abs(report.annotator_accuracy_observed - 0.85) < 0.03
    # Ten balanced classes, p = 0.85: pairwise agreement p^2 + (1-p)^2/9 = 0.725, chance ~0.1 -> kappa ~0.69.
    assert report.fleiss_kappa is not None and abs(report.fleiss_kappa - 0.694) < 0.06
    assert report.krippendorff_alpha is not None and abs(report.krippendorff_alpha - report.fleiss_kappa) < 0.03
    # Every sample got three answers plus the tie-breaks, each at the given price.
    assert report.answers == 3 * 300 + report.tie_breaks
    assert report.cost == pytest.approx(report.answers * 0.05)
    assert report.unresolved == 0
    assert REQUIRED <= set(json.loads(report.model_dump_json()))
    assert [p.labels for p in report.curve] == [100, 200, 300]
    assert report.model_accuracy == report.curve[-1].accuracy > 0.85


def test_one_annotator_is_only_as_good_as_the_annotator() -> None:
    report = simulate(budget=200, strategy="random", annotators=1, annotator_accuracy=0.85, seed=1, batch_size=200)
    assert 0.78 < report.consensus_accuracy < 0.92
    assert report.fleiss_kappa is None and report.krippendorff_alpha is None
    assert report.answers == 200 and report.tie_breaks == 0


def test_same_seed_same_run() -> None:
    a = simulate(budget=60, strategy="mixed", seed=4, batch_size=15)
    b = simulate(budget=60, strategy="mixed", seed=4, batch_size=15)
    assert a.curve == b.curve and a.consensus_accuracy == b.consensus_accuracy
    assert [p.labels for p in a.curve] == [15, 30, 45, 60]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset": "mnist"}, "unknown dataset"),
        ({"budget": 0}, "budget must be at least 1"),
        ({"budget": 5000}, "exceeds"),
        ({"strategy": "loudest"}, "unknown strategy"),
        ({"annotator_accuracy": 1.5}, "within"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        simulate(**kwargs)  # type: ignore[arg-type]


def test_curve_arithmetic() -> None:
    base = [CurvePoint(labels=n, accuracy=a, cost=n) for n, a in [(10, 0.5), (20, 0.7), (30, 0.8), (40, 0.8)]]
    fast = [CurvePoint(labels=n, accuracy=a, cost=n) for n, a in [(10, 0.6), (20, 0.85), (30, 0.9), (40, 0.9)]]
    assert labels_to_reach(base, 0.8) == 30 and labels_to_reach(base, 0.95) is None
    saved = label_savings(base, fast)
    assert (saved.target_accuracy, saved.baseline_labels, saved.labels, saved.ratio) == (0.8, 30, 20, 1.5)
    never = label_savings(fast, base)
    assert never.labels is None and never.ratio is None


@pytest.mark.slow
def test_uncertainty_needs_at_most_half_the_labels_of_random() -> None:
    result = compare(["random", "uncertainty"], seeds=(0, 1, 2), budget=300, batch_size=20)
    assert len(result.reports) == 6
    assert result.curves["random"] == mean_curve([r for r in result.reports if r.strategy == "random"])
    saved = result.savings["uncertainty"]
    assert saved.target_accuracy == result.curves["random"][-1].accuracy > 0.9
    assert saved.baseline_labels is not None and saved.labels is not None
    # Random's final accuracy, reached with at most half of random's labels.
    assert saved.labels <= result.curves["random"][-1].labels / 2
    assert saved.ratio is not None and saved.ratio >= 2.0
    # Both bought equally reliable labels: the saving is the model's, not the crowd's.
    for r in result.reports:
        assert r.consensus_accuracy >= 0.95
