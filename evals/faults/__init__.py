"""Fault injection: real failures, one per incident class, injected into a
real ingestion, annotation or enrichment job by wrapping its source or
pipeline spec, or by writing to the real stores. See ``FAULTS`` for the
catalogue (``faults_for`` per pipeline) and ``make_fault`` to build one by
name::

    fault = make_fault("source_down", heal_after_probes=2)
    fault.apply(job, rt)      # the next job.run(rt) fails on its read stage
    fault.heal()
"""

from evals.faults._annotation import BacklogSurge, DegradedLabeler, RandomAnnotator
from evals.faults._base import ExtraStageSpec, Fault, FaultySource
from evals.faults._code import DEFECT_MESSAGE, OOM_MESSAGE, MemoryBlowup, StageException
from evals.faults._enrichment import EmbeddingOOM, FailingEmbeddingModel, IssueSpike
from evals.faults._registry import FAULTS, apply_all, faults_for, heal_all, make_fault
from evals.faults._sources import (
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    CorruptFileFlood,
    DuplicateFlood,
    SchemaChange,
    SourceDown,
    TransientSourceErrors,
)
from evals.faults._stores import BadConfig, BadTableWrite, high_res_sample_schema

__all__ = [
    "Fault",
    "FAULTS",
    "make_fault",
    "apply_all",
    "heal_all",
    "faults_for",
    "FaultySource",
    "ExtraStageSpec",
    "TransientSourceErrors",
    "SourceDown",
    "MemoryBlowup",
    "BadConfig",
    "SchemaChange",
    "CorruptFileFlood",
    "DuplicateFlood",
    "BadTableWrite",
    "RandomAnnotator",
    "DegradedLabeler",
    "BacklogSurge",
    "FailingEmbeddingModel",
    "EmbeddingOOM",
    "IssueSpike",
    "StageException",
    "CONNECTION_RESET",
    "CONNECTION_REFUSED",
    "OOM_MESSAGE",
    "DEFECT_MESSAGE",
    "high_res_sample_schema",
]
