"""Signals built the way the live and replay backends build them, and what
the catalogue's signatures make of them."""

from __future__ import annotations

from typing import Any

from app.taxonomy import RootCause
from playbooks import PlaybookCatalog
from tools import Signal


def ev(type: str, *, error: str | None = None, stage: str | None = None, **extra: Any) -> Signal:
    return Signal(kind="event", type=type, error=error, stage=stage, **extra)


def log(level: str, message: str) -> Signal:
    return Signal(kind="log", level=level, message=message)


def metric(name: str, value: float, **labels: str) -> Signal:
    return Signal(kind="metric", name=name, value=value, labels=labels)


def check(name: str, status: str = "fail", observed: Any = None, expected: Any = None) -> Signal:
    return Signal(kind="check", name=name, status=status, observed=observed, expected=expected)


def fired(catalog: PlaybookCatalog, signals: list[Signal], pipeline: str = "ingestion") -> dict[RootCause, float]:
    """Root cause -> the highest weight of its matching signatures."""
    out: dict[RootCause, float] = {}
    for _pb, sig in catalog.signatures(pipeline):
        if sig.match(signals) is not None:
            out[sig.root_cause] = max(out.get(sig.root_cause, 0.0), sig.weight)
    return out
