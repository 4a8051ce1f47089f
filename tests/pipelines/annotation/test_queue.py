"""The annotation queue on a real SQLite metadata DB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.db import init_db, make_engine
from app.errors import InputError, NotFoundError
from pipelines.annotation import (
    AnnotationQueue,
    AnnotationTaskRow,
    Box,
    TaskSeed,
    boxes_from_json,
    majority_vote,
    route_consensus,
)
from pipelines.annotation._models import utc_now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    init_db(eng)
    yield eng
    eng.dispose()


def seeds(n: int, **kw: object) -> list[TaskSeed]:
    return [TaskSeed(sample_id=f"s{i}", uri=f"mem://s{i}", priority=float(i), **kw) for i in range(n)]  # type: ignore[arg-type]


def test_enqueue_is_idempotent_by_sample(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds")
    assert q.enqueue(seeds(3)) == 3
    assert q.enqueue(seeds(5)) == 2
    assert q.enqueue([*seeds(2), *seeds(2)]) == 0
    assert len(q.tasks()) == 5
    assert AnnotationQueue(engine, "other").enqueue(seeds(2)) == 2  # datasets are separate queues
    assert len(q.tasks()) == 5


def test_auto_accepted_seed_is_closed_with_provenance(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds")
    q.enqueue([TaskSeed("a", "mem://a", auto_label="cat", auto_confidence=0.97, auto_model="m1", auto_accept=True)])
    task = q.tasks()[0]
    assert task.status == "auto_accepted" and task.final_label == "cat" and task.done_at is not None
    assert task.provenance == {"source": "auto", "annotators": [], "confidence": 0.97, "agreement": None, "model": "m1"}
    assert q.next_tasks(5) == []  # not audited: nothing for people
    with pytest.raises(InputError, match="already closed"):
        q.submit(task.id, "ann", label="dog")
    with pytest.raises(InputError, match="audited"):
        TaskSeed("b", "mem://b", audit=True)


def test_next_tasks_by_priority_skipping_answered_and_full(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds", annotators_per_task=2)
    q.enqueue(seeds(4))  # priorities 0..3
    order = [t.sample_id for t in q.next_tasks(10)]
    assert order == ["s3", "s2", "s1", "s0"]
    top = q.next_tasks(1)[0]
    q.submit(top.id, "ann", label="x")
    assert [t.sample_id for t in q.next_tasks(2, annotator="ann")] == ["s2", "s1"]
    assert q.next_tasks(1, annotator="bob")[0].sample_id == "s3"
    q.submit(top.id, "bob", label="x")
    assert "s3" not in [t.sample_id for t in q.next_tasks(10, annotator="cy")]  # two answers: full
    assert "s3" in [t.sample_id for t in q.next_tasks(10, annotators_per_task=3)]
    assert q.task(top.id).status == "in_review"


def test_set_priorities_reorders_waiting_tasks(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds")
    q.enqueue(seeds(3))
    assert q.set_priorities({"s0": 10.0, "nope": 5.0}, strategy="uncertainty") == 1
    first = q.next_tasks(1)[0]
    assert first.sample_id == "s0" and first.strategy == "uncertainty" and first.priority == 10.0


def test_submit_validates_and_replaces(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds")
    q.enqueue(seeds(1))
    tid = q.tasks()[0].id
    with pytest.raises(InputError, match="no annotation task"):
        q.submit("t_missing", "ann", label="x")
    with pytest.raises(InputError, match="no annotation task"):
        AnnotationQueue(engine, "elsewhere").submit(tid, "ann", label="x")
    with pytest.raises(InputError, match="source"):
        q.submit(tid, "ann", label="x", source="robot")
    q.submit(tid, "ann", label="x")
    q.submit(tid, "ann", label="y", boxes=[Box(1, 2, 3, 4, "y")])
    answers = q.answers(tid)
    assert [(a.annotator, a.label) for a in answers] == [("ann", "y")]
    assert boxes_from_json(answers[0].boxes) == [Box(1, 2, 3, 4, "y")]


def _consensus_round(q: AnnotationQueue, per_task: int, review_below: float) -> dict[str, str]:
    routes: dict[str, str] = {}
    for task in q.ready_for_consensus(per_task):
        answers = q.answers(task.id)
        vote = majority_vote([a.label for a in answers if a.label is not None])
        route = route_consensus(vote, answers=len(answers), annotators_per_task=per_task, review_below=review_below)
        q.close(
            task.id,
            label=vote.label,
            agreement=vote.share,
            route=route,
            provenance={"source": "human", "annotators": [a.annotator for a in answers], "agreement": vote.share},
        )
        routes[task.sample_id] = route
    return routes


def test_consensus_flow_with_expert_review(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds")
    q.enqueue(seeds(3))
    ids = {t.sample_id: t.id for t in q.tasks()}
    votes = {"s0": ["cat", "cat", "cat"], "s1": ["cat", "dog", "bird"], "s2": ["cat", "dog"]}
    for sid, labels in votes.items():
        for name, label in zip(["ann", "bob", "cy"], labels, strict=False):
            q.submit(ids[sid], name, label=label)
    assert {t.sample_id for t in q.ready_for_consensus(3)} == {"s0", "s1"}
    assert _consensus_round(q, 3, 0.67) == {"s0": "accepted", "s1": "expert_review"}
    accepted = q.task(ids["s0"])
    assert accepted.final_label == "cat" and accepted.agreement == 1.0 and accepted.done_at is not None
    assert accepted.provenance["annotators"] == ["ann", "bob", "cy"]
    assert [t.sample_id for t in q.next_tasks(5, expert=True)] == ["s1"]
    assert q.ready_for_expert_close() == []
    q.submit(ids["s1"], "expert", label="bird", source="expert")
    assert [t.sample_id for t in q.ready_for_expert_close()] == ["s1"]
    assert q.next_tasks(5, expert=True) == []
    q.close(ids["s1"], label="bird", agreement=1 / 3, route="accepted", provenance={"source": "expert"})
    assert q.task(ids["s1"]).final_label == "bird"
    # s1 (priority 1) was decided before s0 (priority 0)
    assert [(d.task_id, d.route) for d in q.decisions()] == [
        (ids["s1"], "expert_review"),
        (ids["s0"], "accepted"),
        (ids["s1"], "accepted"),
    ]
    with pytest.raises(InputError, match="unknown route"):
        q.close(ids["s2"], label="x", agreement=None, route="maybe", provenance={})


def test_audited_auto_label_goes_to_people_and_consensus_replaces_it(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds", annotators_per_task=2)
    q.enqueue([TaskSeed("a", "mem://a", auto_label="cat", auto_confidence=0.99, auto_accept=True, audit=True)])
    task = q.next_tasks(1)[0]
    assert task.status == "auto_accepted" and task.audit
    assert q.stats().audit_pending == 1 and q.stats().backlog == 0
    q.submit(task.id, "ann", label="dog")
    q.submit(task.id, "bob", label="dog")
    assert _consensus_round(q, 2, 0.5) == {"a": "accepted"}
    done = q.task(task.id)
    assert done.final_label == "dog" and done.auto_label == "cat" and done.status == "accepted"
    assert q.stats().audit_pending == 0


def test_stats_backlog_age_and_throughput(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds", annotators_per_task=1)
    empty = q.stats()
    assert (empty.backlog, empty.oldest_age_s, empty.throughput_per_h, empty.forecast_clear_h) == (0, 0.0, 0.0, None)
    q.enqueue(seeds(5))
    now = utc_now()
    later = q.stats(now=now + timedelta(minutes=30))
    assert later.backlog == 5 and later.forecast_clear_h is None
    assert 30 * 60 - 5 <= later.oldest_age_s <= 30 * 60 + 5
    for task in q.next_tasks(2):
        q.submit(task.id, "ann", label="x")
    _consensus_round(q, 1, 0.5)
    stats = q.stats()
    assert stats.backlog == 3 and stats.done_last_hour == 2 and stats.throughput_per_h == 2.0
    assert stats.forecast_clear_h == pytest.approx(1.5)
    assert stats.by_status == {"queued": 3, "accepted": 2}
    assert q.stats(now=now + timedelta(hours=2)).done_last_hour == 0  # outside the window


def test_quarantine_requeues_and_is_idempotent(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds")
    q.enqueue(seeds(3))
    ids = {t.sample_id: t.id for t in q.tasks()}
    for name in ("ann", "bob", "spam"):
        q.submit(ids["s0"], name, label="cat")
    q.submit(ids["s1"], "spam", label="dog")
    q.submit(ids["s2"], "ann", label="cat")
    _consensus_round(q, 3, 0.67)
    assert q.task(ids["s0"]).status == "accepted"

    first = q.quarantine_annotator("spam", "agreement 0.31 vs 0.9")
    assert (first.answers, first.requeued, first.already) == (2, tuple(sorted([ids["s0"], ids["s1"]])), False)
    reopened = q.task(ids["s0"])
    assert (reopened.status, reopened.final_label, reopened.done_at, reopened.agreement) == ("queued", None, None, None)
    assert [a.annotator for a in q.answers(ids["s0"])] == ["ann", "bob"]
    assert q.task(ids["s2"]).status == "in_review"  # untouched
    assert q.is_quarantined("spam")

    again = q.quarantine_annotator("spam", "another reason")
    assert (again.answers, again.requeued, again.already, again.reason) == (0, (), True, "agreement 0.31 vs 0.9")
    with pytest.raises(InputError, match="quarantined"):
        q.submit(ids["s2"], "spam", label="cat")
    assert ids["s0"] in [t.id for t in q.next_tasks(5, annotator="cy")]  # needs one more answer now

    q.release_annotator("spam")
    q.submit(ids["s2"], "spam", label="cat")
    assert len(q.answers(ids["s2"])) == 2
    with pytest.raises(NotFoundError):
        q.release_annotator("nobody")


def test_record_quality_on_annotators(engine: Engine) -> None:
    from pipelines.annotation import AnnotatorQuality

    q = AnnotationQueue(engine, "ds")
    q.enqueue(seeds(1))
    q.submit(q.tasks()[0].id, "ann", label="x")
    q.record_quality({"ann": AnnotatorQuality("ann", 0.5, 12, True)})
    (row,) = q.annotators()
    assert (row.name, row.agreement, row.tasks, row.outlier) == ("ann", 0.5, 12, True)


def test_boxes_stored_on_close(engine: Engine) -> None:
    q = AnnotationQueue(engine, "ds")
    q.enqueue(seeds(1))
    tid = q.tasks()[0].id
    q.close(tid, label=None, boxes=[Box(1, 2, 3, 4, "car", 2 / 3)], agreement=0.8, route="accepted", provenance={})
    with Session(engine) as s:
        row = s.get(AnnotationTaskRow, tid)
        assert row is not None
        assert boxes_from_json(row.final_boxes) == [Box(1, 2, 3, 4, "car", 2 / 3)]
