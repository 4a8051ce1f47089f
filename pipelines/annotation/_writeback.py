"""After a run's batches: close tasks by consensus, measure annotators, write
the accepted labels back as an Iceberg snapshot, and the run's figures.

The labels table has the annotation dataset's own name (so the checks and
drift detection that run after every write look at it). It is append-only:
each run adds a row for every sample whose accepted label changed since the
last write, and a ``retracted`` row for a label that no longer stands (its
annotator was quarantined, say). The latest row of a sample
(``written_at``) is its current label: :func:`current_labels`.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from pipelines.annotation._agreement import fleiss_kappa, ratings_table
from pipelines.annotation._consensus import AnnotatorQuality, Vote, aggregate_boxes, annotator_quality, majority_vote
from pipelines.annotation._models import AnnotationRow, AnnotationTaskRow, aware, boxes_from_json, utc_now
from pipelines.annotation._queue import AnnotationQueue
from pipelines.annotation._routing import route_consensus
from pipelines.runtime import MetricValue, Runtime, SampleRow

__all__ = [
    "LABELS_SCHEMA",
    "Closed",
    "labels_table",
    "sample_metadata",
    "settle",
    "close_expert",
    "measure_quality",
    "write_labels",
    "current_labels",
    "run_metrics",
    "recent_agreement",
    "QUALITY_WINDOW",
    "MIN_KAPPA_TASKS",
    "MIN_AUDITS",
]

QUALITY_WINDOW = 500
"""Annotator quality is measured on the most recently closed tasks (a drifting annotator shows up fast)."""
MIN_KAPPA_TASKS = 5
MIN_AUDITS = 5
ACCEPTED_STATUSES = ("accepted", "auto_accepted")

LABELS_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("task_id", pa.string()),
        pa.field("label", pa.string()),
        pa.field("boxes", pa.string()),  # JSON list of {x, y, w, h, label, score}
        pa.field("source", pa.string()),  # auto | human | expert
        pa.field("annotators", pa.string()),  # JSON list of names
        pa.field("confidence", pa.float64()),
        pa.field("agreement", pa.float64()),
        pa.field("model", pa.string()),
        pa.field("status", pa.string()),  # accepted | retracted
        pa.field("run_id", pa.string()),
        pa.field("labeled_at", pa.timestamp("us", tz="UTC")),
        pa.field("written_at", pa.timestamp("us", tz="UTC")),
    ]
)


def labels_table(dataset: str) -> str:
    """The offline table holding ``dataset``'s labels."""
    return dataset


def sample_metadata(engine: Engine, dataset: str, sample_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Ingested metadata of ``sample_ids`` in ``dataset``."""
    out: dict[str, dict[str, Any]] = {}
    ids = list(sample_ids)
    with Session(engine) as s:
        for i in range(0, len(ids), 500):
            rows = s.exec(
                select(SampleRow.sample_id, SampleRow.meta).where(
                    SampleRow.dataset == dataset, col(SampleRow.sample_id).in_(ids[i : i + 500])
                )
            ).all()
            out.update({sid: dict(meta or {}) for sid, meta in rows})
    return out


# --------------------------------------------------------------------- consensus
@dataclass(frozen=True)
class Closed:
    """One consensus decision this run: where the task went, on which answers."""

    task_id: str
    sample_id: str
    route: str
    label: str | None
    share: float
    answers: tuple[str, ...]
    audit: bool
    auto_label: str | None


def _box_share(per_annotator: Sequence[Sequence[Any]]) -> tuple[list[Any], float]:
    boxes = aggregate_boxes(per_annotator)
    drawn = max(len(b) for b in per_annotator)
    if not drawn:
        return [], 1.0
    # Boxes nobody else confirmed count as disagreement: mean support over the most boxes anyone drew.
    return boxes, sum(b.score for b in boxes) / max(drawn, len(boxes))


def settle(queue: AnnotationQueue, *, annotators_per_task: int, review_below: float) -> list[Closed]:
    """Close every task with enough human answers by majority vote (boxes by
    IoU aggregation), sending weak agreement to expert review; close expert
    review tasks an expert has answered. Returns the consensus decisions."""
    closed: list[Closed] = []
    for task in queue.ready_for_consensus(annotators_per_task):
        human = [a for a in queue.answers(task.id) if a.source == "human"]
        votes = [a.label or "" for a in human]
        vote = majority_vote(votes)
        per_annotator = [boxes_from_json(a.boxes) for a in human]
        boxes, box_share = _box_share(per_annotator) if any(per_annotator) else ([], 1.0)
        share = min(vote.share, box_share)
        judged = Vote(vote.label, share, vote.votes, vote.unanimous and share == 1.0)
        route = route_consensus(judged, answers=len(human), annotators_per_task=annotators_per_task, review_below=review_below)
        if route == "needs_more":
            continue
        label = vote.label or None
        final = "rejected" if route == "accepted" and label is None and not boxes else route
        provenance: dict[str, Any] = {
            "source": "human",
            "annotators": [a.annotator for a in human],
            "confidence": share,
            "agreement": share,
            "model": task.auto_model,
        }
        if task.audit:
            provenance.update(audit=True, auto_label=task.auto_label)
        queue.close(task.id, label=label, boxes=boxes, agreement=share, route=final, provenance=provenance)
        closed.append(
            Closed(task.id, task.sample_id, final, label, share, tuple(votes), bool(task.audit), task.auto_label)
        )
    for task in queue.ready_for_expert_close():
        close_expert(queue, task)
    return closed


def close_expert(queue: AnnotationQueue, task: AnnotationTaskRow) -> str:
    """Close an expert-review task on its expert's (latest) answer; returns the route."""
    expert = [a for a in queue.answers(task.id) if a.source == "expert"][-1]
    route = "accepted" if expert.label or expert.boxes else "rejected"
    queue.close(
        task.id,
        label=expert.label,
        boxes=boxes_from_json(expert.boxes),
        agreement=task.agreement,
        route=route,
        provenance={
            "source": "expert",
            "annotators": [expert.annotator],
            "confidence": 1.0,
            "agreement": task.agreement,
            "model": task.auto_model,
        },
    )
    return route


def _decided_answers(queue: AnnotationQueue, window: int) -> tuple[dict[str, tuple[str, str | None, float]], dict[str, list[tuple[str, str]]]]:
    """The last ``window`` tasks people decided (accepted, rejected, or sent
    to an expert): task id -> (status, final label, agreement), and their
    answers that count: task id -> [(annotator, label)]."""
    with Session(queue.engine) as s:
        rows = s.exec(
            select(AnnotationTaskRow.id, AnnotationTaskRow.status, AnnotationTaskRow.final_label, AnnotationTaskRow.agreement)
            .where(
                AnnotationTaskRow.dataset == queue.dataset,
                col(AnnotationTaskRow.status).in_(("accepted", "rejected", "expert_review")),
                col(AnnotationTaskRow.agreement).is_not(None),
            )
            .order_by(col(AnnotationTaskRow.updated_at).desc())
            .limit(window)
        ).all()
        tasks = {tid: (status, label, float(agreement or 0.0)) for tid, status, label, agreement in rows}
        answers: dict[str, list[tuple[str, str]]] = {tid: [] for tid in tasks}
        ids = list(tasks)
        for i in range(0, len(ids), 500):
            for tid, who, label in s.exec(
                select(AnnotationRow.task_id, AnnotationRow.annotator, AnnotationRow.label)
                .where(
                    col(AnnotationRow.task_id).in_(ids[i : i + 500]),
                    col(AnnotationRow.quarantined).is_(False),
                    AnnotationRow.source == "human",
                )
                .order_by(col(AnnotationRow.id))
            ).all():
                answers[tid].append((who, label or ""))
    return tasks, answers


def measure_quality(queue: AnnotationQueue, *, window: int = QUALITY_WINDOW) -> dict[str, AnnotatorQuality]:
    """Each annotator's agreement with the consensus over the last ``window``
    tasks people decided (the accepted label; for a task still with an
    expert, the majority of the answers when there is one); stored on the
    annotators' rows."""
    tasks, answers = _decided_answers(queue, window)
    consensus: dict[str, str] = {}
    for tid, (status, label, _) in tasks.items():
        if status == "accepted" and label is not None:
            consensus[tid] = label
        elif answers[tid]:
            vote = majority_vote([lb for _, lb in answers[tid]])
            if vote.label:
                consensus[tid] = vote.label
    triples = [(tid, who, label) for tid, given in answers.items() for who, label in given]
    qualities = annotator_quality(triples, consensus)
    if qualities:
        queue.record_quality(qualities)
    return qualities


# --------------------------------------------------------------------- labels table
def _row(task: AnnotationTaskRow, run_id: str, now: Any) -> dict[str, Any]:
    prov = task.provenance or {}
    return {
        "sample_id": task.sample_id,
        "task_id": task.id,
        "label": task.final_label,
        "boxes": json.dumps(task.final_boxes or [], sort_keys=True),
        "source": prov.get("source", "auto" if task.status == "auto_accepted" else "human"),
        "annotators": json.dumps(list(prov.get("annotators") or [])),
        "confidence": None if prov.get("confidence") is None else float(prov["confidence"]),
        "agreement": None if task.agreement is None else float(task.agreement),
        "model": prov.get("model") or task.auto_model,
        "status": "accepted",
        "run_id": run_id,
        "labeled_at": aware(task.done_at) if task.done_at else now,
        "written_at": now,
    }


def _fingerprint(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row["label"], row["boxes"], row["source"], row["annotators"], row["status"])


def current_labels(rt: Runtime, dataset: str, *, include_retracted: bool = False) -> pa.Table:
    """The latest row of every sample in the labels table (accepted ones only,
    unless ``include_retracted``)."""
    name = labels_table(dataset)
    if name not in rt.offline.tables():
        return LABELS_SCHEMA.empty_table()
    table = rt.offline.scan(name)
    if table.num_rows == 0:
        return table
    table = table.sort_by([("sample_id", "ascending"), ("written_at", "descending")])
    ids = table.column("sample_id").to_pylist()
    keep = [i for i, sid in enumerate(ids) if i == 0 or ids[i - 1] != sid]
    latest = table.take(pa.array(keep, type=pa.int64()))
    if include_retracted:
        return latest
    return latest.filter(pc.equal(latest.column("status"), "accepted"))


def write_labels(rt: Runtime, dataset: str, *, run_id: str) -> int | None:
    """Append the labels that changed since the last write as one snapshot
    (idempotent per run); None when nothing changed."""
    name = labels_table(dataset)
    if name in rt.offline.tables():
        done = rt.offline.find_run(name, run_id)
        if done is not None:
            return done
    now = utc_now()
    tasks = {t.sample_id: t for t in AnnotationQueue(rt.engine, dataset).tasks()}
    wanted = {sid: _row(t, run_id, now) for sid, t in tasks.items() if t.status in ACCEPTED_STATUSES}
    known = {r["sample_id"]: r for r in current_labels(rt, dataset, include_retracted=True).to_pylist()}
    rows = [r for sid, r in wanted.items() if sid not in known or _fingerprint(known[sid]) != _fingerprint(r)]
    for sid, old in known.items():
        if old["status"] == "accepted" and sid not in wanted:
            task = tasks.get(sid)
            rows.append(
                {
                    **{k: None for k in LABELS_SCHEMA.names},
                    "sample_id": sid,
                    "task_id": task.id if task else old["task_id"],
                    "boxes": "[]",
                    "annotators": "[]",
                    "status": "retracted",
                    "run_id": run_id,
                    "labeled_at": now,
                    "written_at": now,
                }
            )
    if not rows:
        return None
    rows.sort(key=lambda r: r["sample_id"])
    rt.offline.ensure_table(name, LABELS_SCHEMA)
    return rt.offline.append(name, pa.Table.from_pylist(rows, schema=LABELS_SCHEMA), run_id=run_id)


# --------------------------------------------------------------------- figures
def _kappa(closed: Sequence[Closed]) -> float | None:
    """Fleiss' kappa over the decisions that share the most common answer count."""
    if not closed:
        return None
    size, _ = Counter(len(c.answers) for c in closed).most_common(1)[0]
    subjects = [list(c.answers) for c in closed if len(c.answers) == size]
    if len(subjects) < MIN_KAPPA_TASKS or size < 2:
        return None
    table, _ = ratings_table(subjects)
    return float(fleiss_kappa(table))


def run_metrics(stats: Any, state: Mapping[str, Any], qualities: Mapping[str, AnnotatorQuality]) -> list[MetricValue]:
    """The figures one run reports (``Runtime.report_metrics``); a figure with
    too little behind it this run is left out rather than reported as 0."""
    out = [
        MetricValue("annotation_backlog", float(stats.backlog)),
        MetricValue("annotation_backlog_age_s", float(stats.oldest_age_s)),
        MetricValue("annotation_throughput_per_h", float(stats.throughput_per_h)),
        MetricValue("expert_review_backlog", float(stats.expert_backlog)),
    ]
    if stats.forecast_clear_h is not None:
        out.append(MetricValue("annotation_forecast_clear_h", float(stats.forecast_clear_h)))
    closed: list[Closed] = list(state.get("closed") or [])
    kappa = _kappa(closed)
    if kappa is not None:
        out.append(MetricValue("annotation_agreement", kappa))
    if closed:
        out.append(MetricValue("annotation_majority_share", statistics.fmean(c.share for c in closed)))
    new = int(state.get("new_tasks") or 0)
    if new:
        out.append(MetricValue("autolabel_accept_rate", int(state.get("auto_accepted") or 0) / new))
    confidences = list(state.get("confidences") or [])
    if confidences:
        out.append(MetricValue("autolabel_confidence_mean", statistics.fmean(confidences)))
    audits = [c for c in closed if c.audit and c.route == "accepted"]
    if len(audits) >= MIN_AUDITS:
        wrong = sum(1 for c in audits if c.label != c.auto_label)
        out.append(MetricValue("autolabel_audit_error_rate", wrong / len(audits)))
    for name, q in sorted(qualities.items()):
        out.append(MetricValue("annotator_agreement", float(q.agreement), {"annotator": name}))
        out.append(MetricValue("annotator_outlier", 1.0 if q.outlier else 0.0, {"annotator": name}))
    return out


def recent_agreement(queue: AnnotationQueue, *, window: int = QUALITY_WINDOW) -> tuple[float | None, float | None, int]:
    """Fleiss' kappa (None under five tasks) and mean majority share over the
    last ``window`` tasks people decided, and how many that was."""
    tasks, answers = _decided_answers(queue, window)
    closed = [
        Closed(tid, "", status, None, share, tuple(lb for _, lb in answers[tid]), False, None)
        for tid, (status, _, share) in tasks.items()
        if answers[tid]
    ]
    mean = statistics.fmean(share for _, _, share in tasks.values()) if tasks else None
    return _kappa(closed), mean, len(tasks)
