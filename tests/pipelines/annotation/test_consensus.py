"""Majority vote, IoU box aggregation and annotator quality on constructed answers."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import InputError
from pipelines.annotation import Box, aggregate_boxes, annotator_quality, iou, majority_vote


def test_majority_vote_picks_the_most_common_label() -> None:
    vote = majority_vote(["cat", "dog", "cat"])
    assert (vote.label, vote.votes, vote.unanimous) == ("cat", 2, False)
    assert vote.share == pytest.approx(2 / 3)


def test_unanimous_vote() -> None:
    vote = majority_vote(["dog"] * 3)
    assert vote.label == "dog" and vote.share == 1.0 and vote.unanimous


def test_a_tie_has_no_label() -> None:
    vote = majority_vote(["cat", "dog"])
    assert vote.label is None and vote.share == 0.5 and vote.votes == 1
    assert majority_vote(["a", "b", "c"]).label is None
    assert majority_vote(["a", "a", "b", "b", "c"]).label is None
    with pytest.raises(InputError, match="at least one"):
        majority_vote([])


def test_iou() -> None:
    a = Box(0, 0, 10, 10, "x")
    assert iou(a, a) == pytest.approx(1.0)
    assert iou(a, Box(5, 0, 10, 10, "x")) == pytest.approx(50 / 150)
    assert iou(a, Box(20, 20, 5, 5, "x")) == 0.0
    assert iou(Box(0, 0, 0, 0, "x"), Box(0, 0, 0, 0, "x")) == 0.0
    with pytest.raises(InputError, match="negative"):
        Box(0, 0, -1, 2, "x")


def test_boxes_from_three_annotators_merge() -> None:
    # two objects; annotator c misses the second and labels the first differently
    a = [Box(10, 10, 40, 40, "car"), Box(100, 100, 20, 30, "person")]
    b = [Box(12, 9, 40, 42, "car"), Box(102, 98, 20, 30, "person")]
    c = [Box(11, 11, 38, 40, "truck")]
    merged = aggregate_boxes([a, b, c])
    assert len(merged) == 2
    car, person = merged
    assert car.label == "car" and car.score == pytest.approx(1.0)
    assert (car.x, car.y, car.w, car.h) == pytest.approx((11, 10, 118 / 3, 122 / 3))
    assert person.label == "person" and person.score == pytest.approx(2 / 3)
    assert (person.x, person.y) == pytest.approx((101, 99))


def test_a_box_only_one_annotator_drew_is_dropped_by_default() -> None:
    a = [Box(0, 0, 10, 10, "x"), Box(50, 50, 10, 10, "ghost")]
    b = [Box(1, 1, 10, 10, "x")]
    c = [Box(0, 1, 10, 10, "x")]
    merged = aggregate_boxes([a, b, c])
    assert [m.label for m in merged] == ["x"]
    everything = aggregate_boxes([a, b, c], min_votes=1)
    assert sorted(m.label for m in everything) == ["ghost", "x"]


def test_boxes_below_the_iou_threshold_do_not_merge() -> None:
    a = [Box(0, 0, 10, 10, "x")]
    b = [Box(6, 0, 10, 10, "x")]  # IoU 4/16 = 0.25
    assert aggregate_boxes([a, b], iou_threshold=0.5, min_votes=2) == []
    merged = aggregate_boxes([a, b], iou_threshold=0.2, min_votes=2)
    assert len(merged) == 1 and merged[0].x == pytest.approx(3.0)


def test_each_annotator_contributes_at_most_one_box_per_cluster() -> None:
    a = [Box(0, 0, 10, 10, "x"), Box(0.5, 0, 10, 10, "x")]  # a duplicate from one annotator
    b = [Box(0, 0, 10, 10, "x")]
    merged = aggregate_boxes([a, b], min_votes=1)
    assert sorted(m.score for m in merged) == [0.5, 1.0]
    assert aggregate_boxes([]) == []


def _answers(rng: np.random.Generator, accuracy: dict[str, float], tasks: int) -> tuple[list, dict]:
    truth = {f"t{i}": str(rng.integers(0, 4)) for i in range(tasks)}
    rows = []
    for name, acc in accuracy.items():
        for tid, label in truth.items():
            given = label if rng.random() < acc else str((int(label) + 1) % 4)
            rows.append((tid, name, given))
    return rows, truth


def test_annotator_quality_flags_the_poor_annotator() -> None:
    rng = np.random.default_rng(0)
    rows, truth = _answers(rng, {"ann": 0.95, "bob": 0.9, "cy": 0.92, "dee": 0.4}, 60)
    quality = annotator_quality(rows, truth, min_tasks=10, gap=0.25)
    assert quality["dee"].outlier and quality["dee"].agreement < 0.55
    assert not any(quality[n].outlier for n in ("ann", "bob", "cy"))
    assert quality["ann"].tasks == 60


def test_annotator_quality_needs_enough_tasks_and_a_real_gap() -> None:
    rng = np.random.default_rng(1)
    rows, truth = _answers(rng, {"ann": 0.95, "bob": 0.95, "dee": 0.3}, 6)
    quality = annotator_quality(rows, truth, min_tasks=10)
    assert not any(q.outlier for q in quality.values())  # too few tasks to judge anyone
    rows, truth = _answers(rng, {"ann": 0.95, "bob": 0.9, "cy": 0.85}, 60)
    assert not any(q.outlier for q in annotator_quality(rows, truth).values())


def test_annotator_quality_ignores_tasks_without_consensus() -> None:
    rows = [("t1", "ann", "a"), ("t2", "ann", "b"), ("t3", "ann", "a")]
    quality = annotator_quality(rows, {"t1": "a", "t2": "a"}, min_tasks=1)
    assert quality["ann"].tasks == 2 and quality["ann"].agreement == 0.5
    assert not quality["ann"].outlier  # nobody to compare with
