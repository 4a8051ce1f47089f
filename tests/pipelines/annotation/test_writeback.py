"""Consensus closing, annotator quality, the labels table and the run's figures."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pipelines.annotation import AnnotationQueue, TaskSeed, current_labels
from pipelines.annotation._writeback import Closed, measure_quality, run_metrics, settle, write_labels
from pipelines.runtime import Runtime

DS = "wb-labels"


def _seed(i: int, *, auto: bool) -> TaskSeed:
    return TaskSeed(
        sample_id=f"s{i}",
        uri=f"u{i}",
        priority=i / 10,
        auto_label="cat" if auto else "dog",
        auto_confidence=0.99 if auto else 0.4,
        auto_model="m1",
        auto_accept=auto,
    )


def _answer(queue: AnnotationQueue, sample: str, **labels: str) -> str:
    task = queue.task_for_sample(sample)
    assert task is not None
    for who, label in labels.items():
        queue.submit(task.id, who, label=label)
    return task.id


def test_labels_table_follows_the_queue(runtime: Runtime) -> None:
    queue = AnnotationQueue(runtime.engine, DS)
    queue.enqueue([_seed(i, auto=i < 3) for i in range(5)])

    first = write_labels(runtime, DS, run_id="r1")
    assert first is not None
    rows = {r["sample_id"]: r for r in current_labels(runtime, DS).to_pylist()}
    assert set(rows) == {"s0", "s1", "s2"}
    assert all(r["source"] == "auto" and r["label"] == "cat" and r["model"] == "m1" for r in rows.values())
    assert rows["s0"]["confidence"] == pytest.approx(0.99) and rows["s0"]["run_id"] == "r1"
    # Idempotent per run; nothing changed -> no snapshot.
    assert write_labels(runtime, DS, run_id="r1") == first
    assert write_labels(runtime, DS, run_id="r2") is None

    _answer(queue, "s3", a="dog", b="dog", c="dog")
    _answer(queue, "s4", a="dog", b="cat", c="dog")
    closed = settle(queue, annotators_per_task=3, review_below=0.6)
    assert {c.sample_id: c.route for c in closed} == {"s3": "accepted", "s4": "accepted"}
    assert write_labels(runtime, DS, run_id="r3") is not None
    rows = {r["sample_id"]: r for r in current_labels(runtime, DS).to_pylist()}
    assert rows["s4"]["source"] == "human" and rows["s4"]["label"] == "dog"
    assert sorted(json.loads(rows["s4"]["annotators"])) == ["a", "b", "c"]
    assert rows["s4"]["agreement"] == pytest.approx(2 / 3)

    # b's answers stop counting: s3 and s4 go back to the queue, their labels are retracted.
    q = queue.quarantine_annotator("b", "random answers")
    assert len(q.requeued) == 2
    assert write_labels(runtime, DS, run_id="r4") is not None
    assert set(current_labels(runtime, DS).column("sample_id").to_pylist()) == {"s0", "s1", "s2"}
    latest = {r["sample_id"]: r for r in current_labels(runtime, DS, include_retracted=True).to_pylist()}
    assert latest["s3"]["status"] == latest["s4"]["status"] == "retracted"

    # A fourth answer re-closes them without b.
    _answer(queue, "s3", d="dog")
    _answer(queue, "s4", d="dog")
    settle(queue, annotators_per_task=3, review_below=0.6)
    write_labels(runtime, DS, run_id="r5")
    rows = {r["sample_id"]: r for r in current_labels(runtime, DS).to_pylist()}
    assert sorted(json.loads(rows["s4"]["annotators"])) == ["a", "c", "d"]
    assert rows["s4"]["agreement"] == pytest.approx(1.0)


def test_weak_agreement_goes_to_an_expert_and_quality_is_measured(runtime: Runtime) -> None:
    queue = AnnotationQueue(runtime.engine, DS)
    queue.enqueue([_seed(i, auto=False) for i in range(12)])
    for i in range(12):
        # x always disagrees; y and z agree except on s0 (a three-way split).
        _answer(queue, f"s{i}", x="cat", y="dog", z="bird" if i == 0 else "dog")
    closed = {c.sample_id: c for c in settle(queue, annotators_per_task=3, review_below=0.7)}
    assert closed["s0"].route == "expert_review" and closed["s0"].label is None  # a tie
    assert closed["s1"].route == "expert_review" and closed["s1"].label == "dog"  # 2/3 < 0.7
    stats = queue.stats()
    assert stats.expert_backlog == 12 and stats.backlog == 0

    quality = measure_quality(queue)
    # s1..s11 have a "dog" majority; s0 has none, so it does not count.
    assert quality["x"].agreement == 0.0 and quality["x"].tasks == 11 and quality["x"].outlier
    assert quality["y"].agreement == 1.0 and not quality["y"].outlier
    stored = {a.name: a for a in queue.annotators()}
    assert stored["x"].outlier and stored["x"].tasks == 11


def _stats(backlog: int, throughput: float) -> object:
    from pipelines.annotation import QueueStats

    return QueueStats(
        backlog=backlog,
        oldest_age_s=12.0,
        done_last_hour=int(throughput),
        throughput_per_h=throughput,
        forecast_clear_h=backlog / throughput if throughput else None,
        by_status={},
        expert_backlog=2,
        audit_pending=0,
    )


def test_figures_left_out_when_too_little_is_behind_them() -> None:
    names = {m.name for m in run_metrics(_stats(7, 0.0), {}, {})}
    assert names == {"annotation_backlog", "annotation_backlog_age_s", "annotation_throughput_per_h", "expert_review_backlog"}

    base = Closed("t", "s", "accepted", "a", 2 / 3, ("a", "a", "b"), True, "a")
    closed = [replace(base, task_id=f"t{i}", label="a" if i % 2 else "b") for i in range(6)]
    state = {"closed": closed, "new_tasks": 10, "auto_accepted": 4, "confidences": [0.5, 0.7]}
    values = {m.name: m.value for m in run_metrics(_stats(7, 2.0), state, {})}
    assert values["annotation_forecast_clear_h"] == pytest.approx(3.5)
    assert values["autolabel_accept_rate"] == pytest.approx(0.4)
    assert values["autolabel_confidence_mean"] == pytest.approx(0.6)
    assert values["annotation_majority_share"] == pytest.approx(2 / 3)
    assert values["autolabel_audit_error_rate"] == pytest.approx(3 / 6)  # auto label "a" vs consensus
    assert "annotation_agreement" in values
    fewer = {m.name for m in run_metrics(_stats(7, 2.0), {"closed": closed[:4]}, {})}
    assert "annotation_agreement" not in fewer and "autolabel_audit_error_rate" not in fewer
    assert "annotation_majority_share" in fewer
