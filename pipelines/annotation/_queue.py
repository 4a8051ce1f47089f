"""The annotation queue of one dataset, over the metadata DB (SQLite or
PostgreSQL): tasks in priority order, people's answers, consensus closes,
backlog statistics and annotator quarantine.

Task life: ``queued`` -> ``in_review`` (first answer in) -> ``accepted`` /
``rejected`` by consensus, or ``expert_review`` -> ``accepted`` / ``rejected``
by an expert. A confident model label closes a task as ``auto_accepted`` on
arrival; with ``audit`` set it still goes to people, and their consensus
then replaces the model's label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import ColumnElement, Subquery
from sqlmodel import Session, col, select

from app.errors import InputError
from pipelines.annotation._annotators import AnnotatorAdmin, chunks
from pipelines.annotation._consensus import Box
from pipelines.annotation._models import (
    DONE_STATUSES,
    OPEN_STATUSES,
    AnnotationRow,
    AnnotationTaskRow,
    AnnotatorQuarantine,
    AnnotatorRow,
    ConsensusRow,
    QueueStats,
    TaskSeed,
    aware,
    boxes_from_json,
    boxes_to_json,
    new_task_row,
    task_id_for,
    utc_now,
)

__all__ = [
    "TaskSeed",
    "QueueStats",
    "AnnotatorQuarantine",
    "AnnotationQueue",
    "task_id_for",
    "boxes_to_json",
    "boxes_from_json",
    "CLOSE_ROUTES",
    "ANSWER_SOURCES",
]

CLOSE_ROUTES = ("accepted", "rejected", "auto_accepted", "expert_review", "needs_more")
ANSWER_SOURCES = ("human", "expert")


# highest priority first, then oldest; the id makes the order total
_QUEUE_ORDER = (col(AnnotationTaskRow.priority).desc(), col(AnnotationTaskRow.created_at), col(AnnotationTaskRow.id))


class AnnotationQueue(AnnotatorAdmin):
    """The queue of ``dataset``; every method opens its own short session."""

    def __init__(self, engine: Engine, dataset: str, *, annotators_per_task: int = 3) -> None:
        if not dataset:
            raise InputError("an annotation queue needs a dataset name")
        if annotators_per_task < 1:
            raise InputError(f"annotators_per_task must be at least 1, got {annotators_per_task}")
        self.engine = engine
        self.dataset = dataset
        self.annotators_per_task = annotators_per_task

    # --- tasks ----------------------------------------------------------------
    def enqueue(self, seeds: Sequence[TaskSeed]) -> int:
        """Add tasks for samples not queued before (by sample_id); returns how many were new."""
        by_id: dict[str, TaskSeed] = {}
        for seed in seeds:
            by_id.setdefault(seed.sample_id, seed)
        with self._session() as s:
            existing: set[str] = set()
            for chunk in chunks(list(by_id)):
                stmt = select(AnnotationTaskRow.sample_id).where(
                    AnnotationTaskRow.dataset == self.dataset, col(AnnotationTaskRow.sample_id).in_(chunk)
                )
                existing.update(s.exec(stmt).all())
            fresh = [new_task_row(self.dataset, seed) for sid, seed in by_id.items() if sid not in existing]
            s.add_all(fresh)
            try:
                s.commit()
            except IntegrityError:
                # Another writer queued some of these meanwhile: add the rest one by one.
                s.rollback()
                return self._enqueue_each(fresh)
        return len(fresh)

    def _enqueue_each(self, rows: Sequence[AnnotationTaskRow]) -> int:
        added = 0
        for row in rows:
            with self._session() as s:
                s.add(AnnotationTaskRow.model_validate(row.model_dump()))
                try:
                    s.commit()
                    added += 1
                except IntegrityError:
                    s.rollback()
        return added

    def _get_task(self, s: Session, task_id: str) -> AnnotationTaskRow:
        task = s.get(AnnotationTaskRow, task_id)
        if task is None or task.dataset != self.dataset:
            raise InputError(f"no annotation task {task_id!r} in dataset {self.dataset!r}")
        return task

    def task(self, task_id: str) -> AnnotationTaskRow:
        """The task ``task_id`` of this dataset (:class:`InputError` if there is none)."""
        with self._session() as s:
            return self._get_task(s, task_id)

    def task_for_sample(self, sample_id: str) -> AnnotationTaskRow | None:
        with self._session() as s:
            return s.get(AnnotationTaskRow, task_id_for(self.dataset, sample_id))

    def tasks(self, *, status: str | Sequence[str] | None = None) -> list[AnnotationTaskRow]:
        """Every task of the dataset (optionally of some statuses), oldest first."""
        stmt = select(AnnotationTaskRow).where(AnnotationTaskRow.dataset == self.dataset)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            stmt = stmt.where(col(AnnotationTaskRow.status).in_(wanted))
        with self._session() as s:
            return list(s.exec(stmt.order_by(col(AnnotationTaskRow.created_at), col(AnnotationTaskRow.id))).all())

    def _live_counts(self, source: str) -> Subquery:
        """Per task id, its answers that count, from ``source``."""
        return (
            select(AnnotationRow.task_id, func.count().label("n"))
            .where(
                AnnotationRow.dataset == self.dataset,
                col(AnnotationRow.quarantined).is_(False),
                AnnotationRow.source == source,
            )
            .group_by(col(AnnotationRow.task_id))
            .subquery()
        )

    def _awaiting_people(self) -> ColumnElement[bool]:
        return or_(
            col(AnnotationTaskRow.status).in_(OPEN_STATUSES),
            and_(col(AnnotationTaskRow.status) == "auto_accepted", col(AnnotationTaskRow.audit).is_(True)),
        )

    def next_tasks(
        self,
        n: int,
        *,
        annotator: str | None = None,
        expert: bool = False,
        annotators_per_task: int | None = None,
    ) -> list[AnnotationTaskRow]:
        """Up to ``n`` tasks to answer, highest priority first (then oldest):
        queued, in review or audited, with fewer than ``annotators_per_task``
        answers, none of them by ``annotator``. ``expert=True`` lists the
        expert queue instead."""
        if n <= 0:
            return []
        per_task = annotators_per_task or self.annotators_per_task
        stmt = select(AnnotationTaskRow).where(AnnotationTaskRow.dataset == self.dataset)
        if expert:
            counts = self._live_counts("expert")
            stmt = stmt.outerjoin(counts, counts.c.task_id == AnnotationTaskRow.id).where(
                AnnotationTaskRow.status == "expert_review", func.coalesce(counts.c.n, 0) == 0
            )
        else:
            counts = self._live_counts("human")
            stmt = stmt.outerjoin(counts, counts.c.task_id == AnnotationTaskRow.id).where(
                self._awaiting_people(), func.coalesce(counts.c.n, 0) < per_task
            )
        if annotator is not None:
            mine = select(AnnotationRow.task_id).where(
                AnnotationRow.dataset == self.dataset, AnnotationRow.annotator == annotator
            )
            stmt = stmt.where(col(AnnotationTaskRow.id).not_in(mine))
        stmt = stmt.order_by(*_QUEUE_ORDER).limit(n)
        with self._session() as s:
            return list(s.exec(stmt).all())

    def set_priorities(self, priorities: Mapping[str, float], *, strategy: str) -> int:
        """Set the priority (and the strategy that chose it) of waiting tasks,
        keyed by sample_id; samples without a waiting task are skipped.
        Returns how many tasks changed."""
        changed = 0
        now = utc_now()
        with self._session() as s:
            for chunk in chunks(list(priorities)):
                stmt = select(AnnotationTaskRow).where(
                    AnnotationTaskRow.dataset == self.dataset,
                    col(AnnotationTaskRow.sample_id).in_(chunk),
                    col(AnnotationTaskRow.status).in_(OPEN_STATUSES),
                )
                for row in s.exec(stmt).all():
                    row.priority = float(priorities[row.sample_id])
                    row.strategy = strategy
                    row.updated_at = now
                    s.add(row)
                    changed += 1
            s.commit()
        return changed

    # --- answers ----------------------------------------------------------------
    def submit(
        self,
        task_id: str,
        annotator: str,
        *,
        label: str | None = None,
        boxes: Sequence[Box] = (),
        source: str = "human",
        lead_time_s: float | None = None,
        at: datetime | None = None,
    ) -> AnnotationRow:
        """Record ``annotator``'s answer (a label and/or boxes; none at all
        means "nothing to label here"). Answering again replaces the earlier
        answer. :class:`InputError` for an unknown or closed task, a
        quarantined annotator or an unknown source."""
        if source not in ANSWER_SOURCES:
            raise InputError(f"unknown answer source {source!r}; use one of {', '.join(ANSWER_SOURCES)}")
        if not annotator:
            raise InputError("an answer needs an annotator name")
        when = at or utc_now()
        with self._session() as s:
            task = self._get_task(s, task_id)
            person = s.get(AnnotatorRow, annotator)
            if person is not None and person.quarantined:
                raise InputError(
                    f"annotator {annotator!r} is quarantined ({person.reason}); their answers are not taken"
                )
            if task.status in DONE_STATUSES or (task.status == "auto_accepted" and not task.audit):
                raise InputError(f"task {task_id!r} is already closed ({task.status})")
            if person is None:
                s.add(AnnotatorRow(name=annotator, expert=source == "expert"))
            answer = s.exec(
                select(AnnotationRow).where(AnnotationRow.task_id == task_id, AnnotationRow.annotator == annotator)
            ).first()
            if answer is None:
                answer = AnnotationRow(task_id=task_id, dataset=self.dataset, annotator=annotator)
            answer.label, answer.boxes, answer.source = label, boxes_to_json(boxes), source
            answer.quarantined, answer.lead_time_s, answer.created_at = False, lead_time_s, when
            s.add(answer)
            if task.status == "queued" and source == "human":
                task.status = "in_review"
            task.updated_at = utc_now()
            s.add(task)
            try:
                s.commit()
            except IntegrityError as exc:
                raise InputError(
                    f"answer by {annotator!r} to task {task_id!r} was written by someone else at the same time; retry"
                ) from exc
            s.refresh(answer)
        return answer

    def answers(self, task_id: str) -> list[AnnotationRow]:
        """The task's answers that count (not from quarantined annotators), oldest first."""
        stmt = (
            select(AnnotationRow)
            .where(AnnotationRow.task_id == task_id, col(AnnotationRow.quarantined).is_(False))
            .order_by(col(AnnotationRow.created_at), col(AnnotationRow.id))
        )
        with self._session() as s:
            return list(s.exec(stmt).all())

    def ready_for_consensus(self, annotators_per_task: int) -> list[AnnotationTaskRow]:
        """Tasks waiting for people (audited ones included) that have at least
        ``annotators_per_task`` human answers that count, highest priority first."""
        if annotators_per_task < 1:
            raise InputError(f"annotators_per_task must be at least 1, got {annotators_per_task}")
        counts = self._live_counts("human")
        stmt = (
            select(AnnotationTaskRow)
            .join(counts, counts.c.task_id == AnnotationTaskRow.id)
            .where(
                AnnotationTaskRow.dataset == self.dataset, self._awaiting_people(), counts.c.n >= annotators_per_task
            )
            .order_by(*_QUEUE_ORDER)
        )
        with self._session() as s:
            return list(s.exec(stmt).all())

    def ready_for_expert_close(self) -> list[AnnotationTaskRow]:
        """Tasks in expert review that an expert has answered."""
        counts = self._live_counts("expert")
        stmt = (
            select(AnnotationTaskRow)
            .join(counts, counts.c.task_id == AnnotationTaskRow.id)
            .where(AnnotationTaskRow.dataset == self.dataset, AnnotationTaskRow.status == "expert_review")
            .order_by(*_QUEUE_ORDER)
        )
        with self._session() as s:
            return list(s.exec(stmt).all())

    def close(
        self,
        task_id: str,
        *,
        label: str | None,
        boxes: Sequence[Box] = (),
        agreement: float | None,
        route: str,
        provenance: Mapping[str, Any],
    ) -> None:
        """Record a routing decision. ``accepted`` / ``rejected`` /
        ``auto_accepted`` set the final label and boxes; ``expert_review``
        moves the task to the expert queue (``label`` is the candidate);
        ``needs_more`` leaves it waiting for more answers."""
        if route not in CLOSE_ROUTES:
            raise InputError(f"unknown route {route!r}; use one of {', '.join(CLOSE_ROUTES)}")
        now = utc_now()
        with self._session() as s:
            task = self._get_task(s, task_id)
            if route == "needs_more":
                return
            boxes_json = boxes_to_json(boxes)
            task.agreement = agreement
            task.updated_at = now
            if route == "expert_review":
                task.status, task.final_label, task.final_boxes, task.done_at = "expert_review", None, None, None
            else:
                task.status, task.final_label, task.done_at = route, label, now
                task.final_boxes = boxes_json or None
                task.provenance = dict(provenance)
            s.add(task)
            s.add(
                ConsensusRow(
                    task_id=task_id,
                    dataset=self.dataset,
                    label=label,
                    boxes=boxes_json or None,
                    agreement=agreement,
                    route=route,
                    provenance=dict(provenance),
                    at=now,
                )
            )
            s.commit()

    def decisions(self, *, since: datetime | None = None) -> list[ConsensusRow]:
        """Routing decisions recorded in this dataset, oldest first."""
        stmt = select(ConsensusRow).where(ConsensusRow.dataset == self.dataset)
        if since is not None:
            stmt = stmt.where(col(ConsensusRow.at) >= since)
        with self._session() as s:
            return list(s.exec(stmt.order_by(col(ConsensusRow.at), col(ConsensusRow.id))).all())

    # --- statistics ---------------------------------------------------------------
    def stats(self, now: datetime | None = None) -> QueueStats:
        now = aware(now or utc_now())
        with self._session() as s:
            grouped = s.exec(
                select(AnnotationTaskRow.status, func.count())
                .where(AnnotationTaskRow.dataset == self.dataset)
                .group_by(col(AnnotationTaskRow.status))
            ).all()
            oldest = s.exec(
                select(func.min(AnnotationTaskRow.created_at)).where(
                    AnnotationTaskRow.dataset == self.dataset, col(AnnotationTaskRow.status).in_(OPEN_STATUSES)
                )
            ).one()
            done = s.exec(
                select(func.count()).where(
                    AnnotationTaskRow.dataset == self.dataset,
                    col(AnnotationTaskRow.status).in_(DONE_STATUSES),
                    col(AnnotationTaskRow.done_at) > now - timedelta(hours=1),
                    col(AnnotationTaskRow.done_at) <= now,
                )
            ).one()
            audit = s.exec(
                select(func.count()).where(
                    AnnotationTaskRow.dataset == self.dataset,
                    AnnotationTaskRow.status == "auto_accepted",
                    col(AnnotationTaskRow.audit).is_(True),
                )
            ).one()
        by_status = {status: int(count) for status, count in grouped}
        backlog = sum(by_status.get(st, 0) for st in OPEN_STATUSES)
        oldest_age = max(0.0, (now - aware(oldest)).total_seconds()) if oldest is not None else 0.0
        throughput = float(done)
        return QueueStats(
            backlog=backlog,
            oldest_age_s=oldest_age,
            done_last_hour=int(done),
            throughput_per_h=throughput,
            forecast_clear_h=backlog / throughput if throughput > 0 else None,
            by_status=by_status,
            expert_backlog=by_status.get("expert_review", 0),
            audit_pending=int(audit),
        )
