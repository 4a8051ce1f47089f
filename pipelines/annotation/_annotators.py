"""Annotators of one dataset's queue: quality records and quarantine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.errors import InputError, NotFoundError
from pipelines.annotation._models import AnnotationRow, AnnotationTaskRow, AnnotatorQuarantine, AnnotatorRow, utc_now

__all__ = ["AnnotatorAdmin", "chunks"]

_IN_CHUNK = 500  # bound parameters per IN (...): SQLite allows 999 in old builds


def chunks(items: Sequence[str]) -> list[Sequence[str]]:
    return [items[i : i + _IN_CHUNK] for i in range(0, len(items), _IN_CHUNK)]


class AnnotatorAdmin:
    """The annotator half of :class:`AnnotationQueue`."""

    engine: Engine
    dataset: str

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def annotators(self) -> list[AnnotatorRow]:
        """Annotators who answered in this dataset."""
        names = select(AnnotationRow.annotator).where(AnnotationRow.dataset == self.dataset).distinct()
        with self._session() as s:
            return list(s.exec(select(AnnotatorRow).where(col(AnnotatorRow.name).in_(names))).all())

    def record_quality(self, qualities: Mapping[str, Any]) -> None:
        """Store each annotator's last measured agreement, task count and
        outlier flag (values shaped like :class:`AnnotatorQuality`)."""
        now = utc_now()
        with self._session() as s:
            for name, q in qualities.items():
                row = s.get(AnnotatorRow, name) or AnnotatorRow(name=name)
                row.agreement, row.tasks, row.outlier, row.updated_at = q.agreement, q.tasks, q.outlier, now
                s.add(row)
            s.commit()

    def quarantine_annotator(self, name: str, reason: str) -> AnnotatorQuarantine:
        """Stop taking ``name``'s answers: the ones they gave here stop
        counting and every task they answered goes back to the queue (final
        label cleared; audited auto-labels keep the model's label). Calling it
        again changes nothing."""
        if not name:
            raise InputError("quarantine needs an annotator name")
        now = utc_now()
        with self._session() as s:
            person = s.get(AnnotatorRow, name)
            already = person is not None and person.quarantined
            if person is None:
                person = AnnotatorRow(name=name)
            if not already:
                person.quarantined, person.reason, person.quarantined_at = True, reason, now
            person.updated_at = now
            s.add(person)
            live = s.exec(
                select(AnnotationRow).where(
                    AnnotationRow.dataset == self.dataset,
                    AnnotationRow.annotator == name,
                    col(AnnotationRow.quarantined).is_(False),
                )
            ).all()
            affected = sorted({a.task_id for a in live})
            for answer in live:
                answer.quarantined = True
                s.add(answer)
            requeued: list[str] = []
            for chunk in chunks(affected):
                for task in s.exec(select(AnnotationTaskRow).where(col(AnnotationTaskRow.id).in_(chunk))).all():
                    if task.status == "auto_accepted":
                        continue  # the model's label stands; the audit just lost one answer
                    task.status, task.final_label, task.final_boxes = "queued", None, None
                    task.agreement, task.done_at, task.provenance, task.updated_at = None, None, {}, now
                    s.add(task)
                    requeued.append(task.id)
            s.commit()
            stored_reason = person.reason or reason
        return AnnotatorQuarantine(
            annotator=name, reason=stored_reason, answers=len(live), requeued=tuple(sorted(requeued)), already=already
        )

    def release_annotator(self, name: str) -> None:
        """Take ``name``'s new answers again (answers set aside stay set aside)."""
        with self._session() as s:
            person = s.get(AnnotatorRow, name)
            if person is None:
                raise NotFoundError(f"no annotator {name!r}")
            person.quarantined, person.reason, person.quarantined_at, person.updated_at = False, None, None, utc_now()
            s.add(person)
            s.commit()

    def is_quarantined(self, name: str) -> bool:
        with self._session() as s:
            person = s.get(AnnotatorRow, name)
        return person is not None and person.quarantined
