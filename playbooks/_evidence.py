"""Evidence lookups for step templates: the incident's metric signals by name.

A playbook step can take an argument from what the incident shows, e.g. the
annotator whose agreement is worst::

    annotator: "${lowest.annotator_agreement.annotator}"

Three lookups are offered, each mapping a metric name to that signal's
``value`` and its labels (``latest``: the newest signal of the metric,
``lowest`` / ``highest``: the one with the smallest / largest value). A
metric the incident does not show is an unknown name, so the step does not
render and nothing runs with a guessed argument; ``has.<metric>`` tells
whether it shows one (True or False), for choices such as::

    kind: "${'labeler' if has.x and latest.x.value < 0.05 else 'embedding'}"
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tools._signals import Signal

__all__ = ["LOOKUPS", "evidence_lookups", "sample_lookups"]

LOOKUPS = ("latest", "lowest", "highest")


class _Has(Mapping[str, bool]):
    """Metric name -> whether the incident shows it (every name resolves)."""

    def __init__(self, names: frozenset[str] | None) -> None:
        self._names = names  # None: every name (templates checked without an incident)

    def __getitem__(self, key: str) -> bool:
        return self._names is None or key in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names or ()))

    def __len__(self) -> int:
        return len(self._names or ())


def _entry(signal: Signal) -> dict[str, Any]:
    return {**signal.labels, "value": signal.value}


def evidence_lookups(signals: Sequence[Signal]) -> dict[str, Mapping[str, Any]]:
    """``{"latest": {...}, "lowest": {...}, "highest": {...}, "has": {...}}``
    over the metric signals with a value, oldest first in ``signals``."""
    latest: dict[str, Signal] = {}
    lowest: dict[str, Signal] = {}
    highest: dict[str, Signal] = {}
    for s in sorted(signals, key=lambda s: s.t):
        if s.kind != "metric" or not s.name or s.value is None:
            continue
        latest[s.name] = s
        low = lowest.get(s.name)
        if low is None or s.value < (low.value or 0.0):
            lowest[s.name] = s
        high = highest.get(s.name)
        if high is None or s.value > (high.value or 0.0):
            highest[s.name] = s
    return {
        "latest": {k: _entry(v) for k, v in latest.items()},
        "lowest": {k: _entry(v) for k, v in lowest.items()},
        "highest": {k: _entry(v) for k, v in highest.items()},
        "has": _Has(frozenset(latest)),
    }


class _AnySignal(Mapping[str, Any]):
    """A stand-in metric signal: any label reads ``"example"``, the value 1.0."""

    def __getitem__(self, key: str) -> Any:
        return 1.0 if key == "value" else "example"

    def __iter__(self) -> Iterator[str]:
        return iter(("value",))

    def __len__(self) -> int:
        return 1


class _AnyMetric(Mapping[str, Any]):
    """Every metric name resolves (to a stand-in signal): templates are
    checked at load time without an incident."""

    def __getitem__(self, key: str) -> Any:
        return _AnySignal()

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def sample_lookups() -> dict[str, Mapping[str, Any]]:
    """The lookups a playbook is validated with: every name resolves."""
    return {**{name: _AnyMetric() for name in LOOKUPS}, "has": _Has(None)}
