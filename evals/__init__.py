"""Evals: incident cases as data, the replay harness that runs the agents over
them and scores what they did, and fault injection into real pipelines
(:mod:`evals.faults`).

Typical use::

    cases = load_cases(["evals/cases"])
    with ReplayHarness(RunOptions(memory=False)) as harness:
        results = harness.run(cases)
    report = build_report(results, thresholds=load_thresholds())
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals._case import Case, CaseSignal, Expected, OutcomeName, case_files, load_case, load_cases, parse_case
    from evals._live import LiveReport, run_live
    from evals._memory import EvalMemory
    from evals._report import EvalReport, build_report, to_markdown
    from evals._runner import CaseWorld, ReplayHarness, RunOptions
    from evals._score import SCORES, CaseResult, group_totals, score_case, summarize
    from evals._thresholds import Threshold, ThresholdCheck, check_thresholds, default_thresholds_file, load_thresholds

# Public name -> the module defining it. Imported on first use, so that
# ``evals.faults`` stays light (the harness pulls in the agents, LangGraph and Chroma).
_HOMES = {
    "evals._case": ("Case", "CaseSignal", "Expected", "OutcomeName", "case_files", "load_case", "load_cases",
                    "parse_case"),
    "evals._live": ("LiveReport", "run_live"),
    "evals._memory": ("EvalMemory",),
    "evals._report": ("EvalReport", "build_report", "to_markdown"),
    "evals._runner": ("CaseWorld", "ReplayHarness", "RunOptions"),
    "evals._score": ("SCORES", "CaseResult", "group_totals", "score_case", "summarize"),
    "evals._thresholds": ("Threshold", "ThresholdCheck", "check_thresholds", "default_thresholds_file",
                          "load_thresholds"),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "SCORES",
    "Case",
    "CaseResult",
    "CaseSignal",
    "CaseWorld",
    "EvalMemory",
    "EvalReport",
    "LiveReport",
    "Expected",
    "OutcomeName",
    "ReplayHarness",
    "RunOptions",
    "Threshold",
    "ThresholdCheck",
    "build_report",
    "case_files",
    "check_thresholds",
    "default_thresholds_file",
    "group_totals",
    "load_case",
    "load_cases",
    "load_thresholds",
    "parse_case",
    "run_live",
    "score_case",
    "summarize",
    "to_markdown",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'evals' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
