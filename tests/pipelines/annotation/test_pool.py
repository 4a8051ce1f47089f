"""Simulated annotators and the pool driver over a real queue."""

from __future__ import annotations

from collections import Counter

import pytest

from app.errors import InputError
from pipelines.annotation import AnnotationQueue, SimulatedAnnotators, TaskSeed, answer_queue, digit_images
from pipelines.runtime import Runtime

LABELS = [str(i) for i in range(10)]


def _truth(i: int) -> dict[str, str]:
    return {"label": LABELS[i % 10]}


def test_accuracy_is_honoured_and_answers_are_stable() -> None:
    pool = SimulatedAnnotators(["good", "poor"], {"good": 0.9, "poor": 0.6}, seed=7)
    n = 3000
    right = Counter()
    for i in range(n):
        for name in pool.names:
            right[name] += pool.answer(name, f"s{i}", _truth(i), LABELS) == _truth(i)["label"]
    assert right["good"] / n == pytest.approx(0.9, abs=0.025)
    assert right["poor"] / n == pytest.approx(0.6, abs=0.03)
    # The same annotator gives the same answer to the same sample, whatever the order.
    again = SimulatedAnnotators(["good", "poor"], {"good": 0.9, "poor": 0.6}, seed=7)
    assert [again.answer("poor", f"s{i}", _truth(i), LABELS) for i in reversed(range(50))] == [
        pool.answer("poor", f"s{i}", _truth(i), LABELS) for i in reversed(range(50))
    ]


def test_random_answers_ignore_the_truth() -> None:
    pool = SimulatedAnnotators(["a", "r"], 1.0, seed=1, random_answers={"r"})
    answers = [pool.answer("r", f"s{i}", {"label": "3"}, LABELS) for i in range(2000)]
    counts = Counter(answers)
    assert set(counts) == set(LABELS)
    assert counts["3"] / len(answers) == pytest.approx(0.1, abs=0.03)
    assert all(pool.answer("a", f"s{i}", {"label": "3"}, LABELS) == "3" for i in range(50))
    # A fault can turn an annotator random at run time.
    pool.random_answers.add("a")
    assert {pool.answer("a", f"s{i}", {"label": "3"}, LABELS) for i in range(200)} != {"3"}


def test_no_truth_no_answer_and_bad_pools() -> None:
    pool = SimulatedAnnotators(["a"], 0.9, truth_key="digit")
    assert pool.answer("a", "s1", {"label": "3"}, LABELS) is None
    with pytest.raises(InputError, match="not in this pool"):
        pool.answer("b", "s1", {"digit": "3"}, LABELS)
    with pytest.raises(InputError, match="at least one"):
        SimulatedAnnotators([], 0.9)
    with pytest.raises(InputError, match="distinct"):
        SimulatedAnnotators(["a", "a"], 0.9)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        SimulatedAnnotators(["a"], 1.5)
    with pytest.raises(InputError, match="no accuracy given for annotator"):
        SimulatedAnnotators(["a", "b"], {"a": 0.9})


def test_answer_queue_respects_capacity_priority_and_quarantine(runtime: Runtime) -> None:
    queue = AnnotationQueue(runtime.engine, "pool-ds", annotators_per_task=2)
    queue.enqueue([TaskSeed(sample_id=f"s{i}", uri=f"u{i}", priority=i / 10) for i in range(10)])
    pool = SimulatedAnnotators(["a", "b", "c"], 1.0, capacity_per_run=4)
    metas = {f"s{i}": _truth(i) for i in range(10)}
    queue.quarantine_annotator("c", "test")

    given = answer_queue(
        queue, pool, labels=LABELS, metadata=lambda ids: {i: metas[i] for i in ids}, annotators_per_task=2
    )

    assert given == {"a": 4, "b": 4}  # c is quarantined: not asked
    ready = queue.ready_for_consensus(2)
    # Both answered the four highest-priority tasks, from the truth.
    assert sorted(t.sample_id for t in ready) == ["s6", "s7", "s8", "s9"]
    for task in ready:
        assert {a.label for a in queue.answers(task.id)} == {metas[task.sample_id]["label"]}


def test_digit_images_carry_their_labels() -> None:
    images, labels = digit_images(12, offset=5, size=32)
    assert len(images) == len(labels) == 12
    assert images[0].shape == (32, 32) and images[0].dtype.name == "uint8"
    assert set(labels) <= set(LABELS) and len(set(labels)) > 3
    with pytest.raises(InputError, match="cannot take"):
        digit_images(10, offset=1795)
