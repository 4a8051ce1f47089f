"""One queue contract on every metadata DB: SQLite always, PostgreSQL (marked
``integration``) when one answers. PostgreSQL runs use a dataset and
annotator names of their own and delete their rows afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from app.db import init_db, make_engine
from app.errors import InputError, StorageError
from pipelines.annotation import (
    AnnotationQueue,
    AnnotationRow,
    AnnotationTaskRow,
    AnnotatorRow,
    ConsensusRow,
    TaskSeed,
    majority_vote,
    route_consensus,
)
from tests.conftest import PG_URL, reachable


def _postgres_engine() -> Engine | None:
    base = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    if not reachable("127.0.0.1", 5432):
        return None
    for url in dict.fromkeys([base, base.replace("//postgres@", "//root@", 1)]):
        engine = make_engine(url)
        try:
            init_db(engine)
            return engine
        except (SQLAlchemyError, StorageError):
            engine.dispose()  # this user cannot connect or create tables: try the next one
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    suffix = uuid.uuid4().hex[:10]
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'meta.db'}")
        init_db(engine)
    else:
        found = _postgres_engine()
        if found is None:
            pytest.skip("PostgreSQL is not reachable")
        engine = found
    dataset = f"conformance_{suffix}"
    yield engine, suffix
    try:
        with Session(engine) as s:
            s.exec(delete(AnnotationRow).where(col(AnnotationRow.dataset) == dataset))  # type: ignore[call-overload]
            s.exec(delete(ConsensusRow).where(col(ConsensusRow.dataset) == dataset))  # type: ignore[call-overload]
            s.exec(delete(AnnotationTaskRow).where(col(AnnotationTaskRow.dataset) == dataset))  # type: ignore[call-overload]
            s.exec(delete(AnnotatorRow).where(col(AnnotatorRow.name).like(f"%_{suffix}")))  # type: ignore[call-overload]
            s.commit()
    finally:
        engine.dispose()


def test_queue_contract(backend: tuple[Engine, str]) -> None:
    engine, suffix = backend
    ann, bob, cy, spam = (f"{n}_{suffix}" for n in ("ann", "bob", "cy", "spam"))
    q = AnnotationQueue(engine, f"conformance_{suffix}")
    seeds = [TaskSeed(f"s{i}", f"mem://s{i}", priority=float(i)) for i in range(4)]
    seeds.append(TaskSeed("auto", "mem://auto", auto_label="cat", auto_confidence=0.99, auto_accept=True))
    assert q.enqueue(seeds) == 5
    assert q.enqueue(seeds) == 0
    assert [t.sample_id for t in q.next_tasks(3)] == ["s3", "s2", "s1"]
    ids = {t.sample_id: t.id for t in q.tasks()}

    for name, label in ((ann, "cat"), (bob, "cat"), (spam, "dog")):
        q.submit(ids["s3"], name, label=label)
    for name, label in ((ann, "cat"), (bob, "dog"), (spam, "bird")):
        q.submit(ids["s2"], name, label=label)
    assert [t.sample_id for t in q.next_tasks(5, annotator=cy)] == ["s1", "s0"]

    for task in q.ready_for_consensus(3):
        answers = q.answers(task.id)
        vote = majority_vote([a.label for a in answers if a.label])
        route = route_consensus(vote, answers=len(answers), annotators_per_task=3, review_below=0.6)
        q.close(task.id, label=vote.label, agreement=vote.share, route=route, provenance={"source": "human"})
    assert q.task(ids["s3"]).final_label == "cat"
    assert q.task(ids["s2"]).status == "expert_review"

    stats = q.stats()
    assert (stats.backlog, stats.done_last_hour, stats.expert_backlog) == (2, 1, 1)
    assert stats.by_status == {"queued": 2, "accepted": 1, "expert_review": 1, "auto_accepted": 1}
    assert stats.forecast_clear_h == pytest.approx(2.0)

    result = q.quarantine_annotator(spam, "outlier")
    assert result.requeued == tuple(sorted([ids["s2"], ids["s3"]])) and result.answers == 2
    assert q.quarantine_annotator(spam, "outlier").requeued == ()
    assert q.task(ids["s3"]).status == "queued" and q.task(ids["s3"]).final_label is None
    assert q.stats().backlog == 4
    with pytest.raises(InputError, match="quarantined"):
        q.submit(ids["s1"], spam, label="cat")
    q.release_annotator(spam)
    assert not q.is_quarantined(spam)
