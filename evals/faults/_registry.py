"""The fault registry, building faults by name, and applying several in turn."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.errors import InputError
from evals.faults._annotation import BacklogSurge, DegradedLabeler, RandomAnnotator
from evals.faults._base import Fault
from evals.faults._code import MemoryBlowup, StageException
from evals.faults._enrichment import EmbeddingOOM, FailingEmbeddingModel, IssueSpike
from evals.faults._sources import CorruptFileFlood, DuplicateFlood, SchemaChange, SourceDown, TransientSourceErrors
from evals.faults._stores import BadConfig, BadTableWrite
from pipelines.runtime import Job, Runtime

__all__ = ["FAULTS", "make_fault", "apply_all", "heal_all", "faults_for"]

FAULTS: dict[str, type[Fault]] = {
    cls.name: cls
    for cls in (
        TransientSourceErrors,
        SourceDown,
        MemoryBlowup,
        BadConfig,
        SchemaChange,
        CorruptFileFlood,
        DuplicateFlood,
        BadTableWrite,
        StageException,
        RandomAnnotator,
        DegradedLabeler,
        BacklogSurge,
        FailingEmbeddingModel,
        EmbeddingOOM,
        IssueSpike,
    )
}
"""Every fault class by name (its ``pipeline`` says which job it strikes)."""


def make_fault(name: str, **params: Any) -> Fault:
    """Build the fault called ``name`` with ``params``; an unknown name or
    parameter, or a bad value, raises InputError."""
    cls = FAULTS.get(name)
    if cls is None:
        raise InputError(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}")
    known = cls.defaults()
    unknown = sorted(set(params) - set(known))
    if unknown:
        takes = ", ".join(known) or "no parameters"
        raise InputError(f"fault {name!r} has no parameter {unknown[0]!r} (it takes: {takes})")
    return cls(**params)


def faults_for(pipeline: str) -> dict[str, type[Fault]]:
    """The faults that strike ``pipeline``'s jobs, by name."""
    return {name: cls for name, cls in FAULTS.items() if cls.pipeline == pipeline}


def apply_all(faults: Iterable[Fault], job: Job, rt: Runtime) -> list[Fault]:
    """Apply ``faults`` to ``job`` one after another, in order; returns them."""
    applied: list[Fault] = []
    for fault in faults:
        fault.apply(job, rt)
        applied.append(fault)
    return applied


def heal_all(faults: Iterable[Fault]) -> None:
    """Heal ``faults`` in the reverse order of their application."""
    for fault in reversed(list(faults)):
        fault.heal()
