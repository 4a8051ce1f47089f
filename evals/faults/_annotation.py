"""Faults of the annotation pipeline: an annotator answering at random, an
auto-labeler that is confidently wrong, and a backlog people cannot clear.

Each changes the real job the way the failure would: the job's simulated
annotator pool (through the pipeline spec it builds each run), the labeler
the spec holds, or the task queue in the metadata DB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete
from sqlmodel import Session, col

from app.errors import InputError
from app.taxonomy import RootCause
from evals.faults._base import Fault, require
from pipelines.runtime import Job, PipelineConfig, Runtime

if TYPE_CHECKING:
    from pipelines.runtime import PipelineSpec

__all__ = ["RandomAnnotator", "DegradedLabeler", "BacklogSurge"]


def _annotation_config() -> type[PipelineConfig]:
    from pipelines.annotation import AnnotationConfig

    return AnnotationConfig


def _pool_of(spec: PipelineSpec, fault: str) -> Any:
    from pipelines.annotation import SimulatedAnnotators

    pool = getattr(spec, "pool", None)
    if not isinstance(pool, SimulatedAnnotators):
        raise InputError(f"fault {fault!r} needs an annotation job with a simulated annotator pool")
    return pool


class RandomAnnotator(Fault):
    name = "annotator_random"
    description = (
        "An annotator answers at random (a new vendor account clicking through, or a pool member gone bad): "
        "the team's agreement drops and theirs with the consensus falls far below the others'."
    )
    pipeline = "annotation"
    expected_root_cause = RootCause.ANNOTATION_QUALITY
    expected_playbook = "quarantine_annotator"

    def __init__(self, annotator: str = "vendor-new-01") -> None:
        """``annotator``: who answers at random; a name not in the pool joins
        it (first in line for tasks, as a fresh account grabbing work would)."""
        super().__init__()
        require(bool(annotator.strip()), self.name, "annotator must be a non-empty name")
        self.annotator = annotator
        self._pool: Any = None
        self._joined = False

    def params(self) -> dict[str, object]:
        return {"annotator": self.annotator}

    def _config_model(self) -> type[PipelineConfig]:
        return _annotation_config()

    def _install(self, job: Job, rt: Runtime) -> None:
        self.effects.update(annotator=self.annotator)
        self._wrap_spec(job, self._wrap)

    def _wrap(self, spec: PipelineSpec) -> PipelineSpec:
        if not self.active or self._pool is not None:
            return spec
        pool = _pool_of(spec, self.name)
        if self.annotator not in pool.names:
            pool.names.insert(0, self.annotator)
            pool.accuracy[self.annotator] = 0.0
            self._joined = True
        pool.random_answers.add(self.annotator)
        self._pool = pool
        self.effects["joined"] = self._joined
        return spec

    def _undo(self) -> None:
        pool = self._pool
        if pool is None:
            return
        pool.random_answers.discard(self.annotator)
        if self._joined:
            pool.names.remove(self.annotator)
            pool.accuracy.pop(self.annotator, None)


class _ConfidentlyWrong:
    """An auto-labeler gone bad: every proposal names a wrong label (the inner
    model's choice shifted by one, or one class for everything when
    collapsed) with a high confidence."""

    def __init__(self, inner: Any, confidence: float, collapsed: bool, fault: DegradedLabeler) -> None:
        self.inner = inner
        self.labels = list(inner.labels)
        self.model_id = f"{inner.model_id}-degraded"
        self.confidence = confidence
        self.collapsed = collapsed
        self.fault = fault

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        inner = np.asarray(self.inner.predict_proba(items), dtype=np.float64)
        if not self.fault.active:
            return inner
        n = len(self.labels)
        chosen = np.zeros(len(inner), dtype=int) if self.collapsed else (inner.argmax(axis=1) + 1) % n
        out = np.full((len(inner), n), (1.0 - self.confidence) / max(1, n - 1))
        out[np.arange(len(inner)), chosen] = self.confidence
        return out

    def propose(self, items: Sequence[Any]) -> list[Any]:
        from pipelines.annotation import LabelProposal

        if not self.fault.active:
            return list(self.inner.propose(items))
        probs = self.predict_proba(items)
        self.fault.effects["proposals"] = int(self.fault.effects.get("proposals", 0)) + len(probs)
        return [
            LabelProposal(label=self.labels[int(row.argmax())], confidence=float(row.max()), model=self.model_id)
            for row in probs
        ]


class DegradedLabeler(Fault):
    name = "autolabel_degraded"
    description = (
        "The auto-labeler degrades but stays confident: its proposals are wrong (or all one class) at a "
        "confidence above the auto-accept threshold, so wrong labels are accepted and people overrule the "
        "audited ones."
    )
    pipeline = "annotation"
    expected_root_cause = RootCause.MODEL_DEGRADATION
    expected_playbook = "raise_autolabel_threshold"

    def __init__(self, confidence: float = 0.965, collapsed: bool = False) -> None:
        """``confidence``: of every wrong proposal (above the default
        threshold 0.95, below the 0.98 a stricter one would ask for).
        ``collapsed``: propose the first label for everything."""
        super().__init__()
        require(0.5 < confidence < 1.0, self.name, f"confidence must be in (0.5, 1), got {confidence}")
        self.confidence = confidence
        self.collapsed = collapsed

    def params(self) -> dict[str, object]:
        return {"confidence": self.confidence, "collapsed": self.collapsed}

    def _config_model(self) -> type[PipelineConfig]:
        return _annotation_config()

    def _install(self, job: Job, rt: Runtime) -> None:
        self.effects.update(proposals=0)
        self._wrap_spec(job, self._wrap)

    def _wrap(self, spec: PipelineSpec) -> PipelineSpec:
        labeler = getattr(spec, "labeler", None)
        if labeler is None:
            raise InputError(f"fault {self.name!r} needs an annotation job (its pipeline has no labeler)")
        if self.active and not isinstance(labeler, _ConfidentlyWrong):
            spec.labeler = _ConfidentlyWrong(labeler, self.confidence, self.collapsed, self)  # type: ignore[attr-defined]
        return spec


class BacklogSurge(Fault):
    name = "annotation_backlog_surge"
    description = (
        "A bulk delivery queues days of work at once (tasks the pool cannot answer yet) and the pool's "
        "capacity halves: the backlog would take people days to clear."
    )
    pipeline = "annotation"
    expected_root_cause = RootCause.BACKLOG
    expected_playbook = "escalate_only"

    def __init__(self, days: float = 4.0, capacity_factor: float = 0.5, min_tasks: int = 400) -> None:
        """``days``: the surge is this many days of the current throughput
        (at least ``min_tasks`` tasks); ``capacity_factor``: what is left of
        each annotator's capacity per run."""
        super().__init__()
        require(days > 0, self.name, f"days must be > 0, got {days}")
        require(0.0 < capacity_factor <= 1.0, self.name, f"capacity_factor must be in (0, 1], got {capacity_factor}")
        require(min_tasks >= 1, self.name, f"min_tasks must be >= 1, got {min_tasks}")
        self.days = days
        self.capacity_factor = capacity_factor
        self.min_tasks = min_tasks
        self._pool: Any = None
        self._ids: list[str] = []

    def params(self) -> dict[str, object]:
        return {"days": self.days, "capacity_factor": self.capacity_factor, "min_tasks": self.min_tasks}

    def _config_model(self) -> type[PipelineConfig]:
        return _annotation_config()

    def _install(self, job: Job, rt: Runtime) -> None:
        from pipelines.annotation import AnnotationQueue, TaskSeed

        queue = AnnotationQueue(rt.engine, job.dataset)
        stats = queue.stats()
        n = max(self.min_tasks, math.ceil(max(stats.throughput_per_h, 1.0) * 24 * self.days) - stats.backlog)
        self._ids = [f"surge-{i:06d}" for i in range(n)]
        seeds = [TaskSeed(sample_id=sid, uri=f"surge://{job.dataset}/{sid}", strategy="random") for sid in self._ids]
        self.effects.update(tasks=queue.enqueue(seeds), throughput_per_h=stats.throughput_per_h)
        self._wrap_spec(job, self._wrap)

    def _wrap(self, spec: PipelineSpec) -> PipelineSpec:
        if not self.active:
            return spec
        pool = _pool_of(spec, self.name)
        if self._pool is None:
            self._pool = pool
            self.effects["capacity_before"] = pool.capacity_per_run
            pool.capacity_per_run = max(1, int(pool.capacity_per_run * self.capacity_factor))
        return spec

    def _undo(self) -> None:
        """The delivery is taken back (its open tasks leave the queue) and the
        annotators' capacity returns."""
        from pipelines.annotation import AnnotationTaskRow

        if self._pool is not None:
            self._pool.capacity_per_run = int(self.effects["capacity_before"])
        ids = self._ids
        with Session(self.rt.engine) as s:
            for i in range(0, len(ids), 500):
                s.execute(
                    delete(AnnotationTaskRow).where(
                        col(AnnotationTaskRow.dataset) == self.job.dataset,
                        col(AnnotationTaskRow.sample_id).in_(ids[i : i + 500]),
                    )
                )
            s.commit()
