"""Fault injection: real failures, one per incident class, injected into a
real ingestion job by wrapping its source or pipeline spec, or by writing to
the real stores. See ``FAULTS`` for the catalogue and ``make_fault`` to build
one by name::

    fault = make_fault("source_down", heal_after_probes=2)
    fault.apply(job, rt)      # the next job.run(rt) fails on its read stage
    fault.heal()
"""

from evals.faults._base import ExtraStageSpec, Fault, FaultySource
from evals.faults._code import DEFECT_MESSAGE, OOM_MESSAGE, MemoryBlowup, StageException
from evals.faults._registry import FAULTS, apply_all, heal_all, make_fault
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
    "StageException",
    "CONNECTION_RESET",
    "CONNECTION_REFUSED",
    "OOM_MESSAGE",
    "DEFECT_MESSAGE",
    "high_res_sample_schema",
]
