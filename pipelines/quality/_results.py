"""What a check run produces: one :class:`CheckResult` per check, gathered in
a :class:`SuiteResult`. Every value in them is JSON-safe, so they store and
travel as they are."""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from pipelines.runtime import utcnow

__all__ = ["CheckResult", "SuiteResult", "jsonable", "observed_text", "expected_text"]

_MAX_TEXT = 256  # a string longer than this is cut in failing examples


def jsonable(value: Any, *, cut: int | None = None) -> Any:
    """``value`` as plain JSON types: datetimes as ISO text, bytes as base64,
    decimals and non-finite floats as text; strings cut at ``cut`` characters."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if cut is None or len(value) <= cut else value[:cut] + "…"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = base64.b64encode(raw[: cut or len(raw)]).decode("ascii")
        return text + ("…" if cut is not None and len(raw) > cut else "")
    if isinstance(value, dict):
        return {str(k): jsonable(v, cut=cut) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, cut=cut) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item(), cut=cut)
    return str(value)


class CheckResult(BaseModel):
    """The outcome of one check.

    ``observed`` is the measured value: the share of judged rows that fail for
    a row-level check (not_null, null_rate, unique, range, in_set, regex,
    length), the row count, the newest row's age in seconds (freshness), the
    number of rows a SQL check returned or its scalar, and for a schema check
    ``{missing, mismatched, unexpected}``. ``element_count`` is the number of
    rows judged (nulls are not judged by value checks), ``unexpected_count``
    how many of them failed. ``error`` says why a check could not be evaluated
    (a missing column, a bad query); such a check fails.
    """

    name: str
    type: str
    severity: str
    passed: bool
    observed: Any = None
    expected: dict[str, Any] = Field(default_factory=dict)
    element_count: int = 0
    unexpected_count: int = 0
    failing_examples: list[dict[str, Any]] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def message(self) -> str:
        """One line for a person: what was checked, what was seen."""
        verdict = "passed" if self.passed else "failed"
        if self.error:
            return f"check {self.name!r} ({self.severity}) {verdict}: {self.error}"
        return (
            f"check {self.name!r} ({self.severity}) {verdict}: observed {observed_text(self)}, "
            f"expected {expected_text(self)}"
        )


class SuiteResult(BaseModel):
    """Every check of a suite on one table or snapshot."""

    dataset: str | None = None
    snapshot_id: int | None = None
    suite: str = "<suite>"
    row_count: int = 0
    results: list[CheckResult] = Field(default_factory=list)
    seconds: float = 0.0
    at: datetime = Field(default_factory=utcnow)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def critical_failed(self) -> bool:
        """Whether a critical check failed: the snapshot should not be used."""
        return any(r.severity == "critical" and not r.passed for r in self.results)

    def counts(self) -> dict[str, int]:
        failed = self.failed
        return {
            "total": len(self.results),
            "passed": len(self.results) - len(failed),
            "failed": len(failed),
            **{f"failed_{sev}": sum(1 for r in failed if r.severity == sev) for sev in ("critical", "warning", "info")},
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``dataops check --json`` prints."""
        return {
            "dataset": self.dataset,
            "snapshot_id": self.snapshot_id,
            "suite": self.suite,
            "row_count": self.row_count,
            "passed": self.passed,
            "critical_failed": self.critical_failed,
            **{k: v for k, v in self.counts().items() if k != "passed"},
            "seconds": round(self.seconds, 4),
            "at": self.at.isoformat(),
            "checks": [r.model_dump(mode="json") | {"message": r.message} for r in self.results],
        }


# --- text for people ---------------------------------------------------------
def _pct(rate: float) -> str:
    return f"{rate * 100:.3g} %"


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _age(seconds: float) -> str:
    s = abs(seconds)
    text = (
        f"{s:.0f} s"
        if s < 120
        else f"{s / 60:.1f} min"
        if s < 7200
        else f"{s / 3600:.1f} h"
        if s < 172800
        else f"{s / 86400:.1f} d"
    )
    return text if seconds >= 0 else f"{text} in the future"


def observed_text(r: CheckResult) -> str:
    """The observed value as a person reads it."""
    if r.error:
        return "error"
    o = r.observed
    if r.type == "schema" and isinstance(o, dict):
        parts = [f"missing {', '.join(o.get('missing', []))}"] if o.get("missing") else []
        parts += [f"{c} is {t}" for c, t in (o.get("mismatched") or {}).items()]
        if o.get("unexpected"):
            parts.append(f"unexpected {', '.join(o['unexpected'])}")
        return "; ".join(parts) or "as expected"
    if r.type in ("row_count",):
        return _num(o)
    if r.type == "freshness":
        return "no timestamps" if o is None else f"newest is {_age(float(o))} old"
    if r.type == "sql":
        if "op" in r.expected:
            return _num(o)
        return f"{o} row(s)"
    if isinstance(o, float | int):
        return f"{_pct(float(o))} ({r.unexpected_count} of {r.element_count})"
    return _num(o)


def expected_text(r: CheckResult) -> str:
    """The expectation as a person reads it."""
    e = r.expected
    mostly = e.get("mostly")
    tail = f", mostly {mostly}" if mostly not in (None, 1.0) else ""
    t = r.type
    if t == "schema":
        return f"{len(e.get('columns', {}))} column(s){' only' if e.get('strict') else ''}"
    if t == "not_null":
        return f"no nulls{tail}"
    if t == "null_rate":
        return f"null rate ≤ {_pct(float(e['max']))}"
    if t == "unique":
        return f"unique {', '.join(e.get('columns', []))}{tail}"
    if t == "range":
        lo = "" if e.get("min") is None else f"{_num(e['min'])} {'≤' if e.get('min_inclusive', True) else '<'} "
        hi = "" if e.get("max") is None else f" {'≤' if e.get('max_inclusive', True) else '<'} {_num(e['max'])}"
        return f"{lo}x{hi}{tail}"
    if t == "in_set":
        values = e.get("values", [])
        shown = ", ".join(map(str, values[:8])) + (", …" if len(values) > 8 else "")
        return f"in {{{shown}}}{tail}"
    if t == "regex":
        return f"matches {e.get('pattern')}{tail}"
    if t in ("length", "row_count"):
        least, most = e.get("min"), e.get("max")
        what = "length" if t == "length" else "rows"
        if least is not None and most is not None:
            return f"{least} ≤ {what} ≤ {most}{tail}"
        return f"{what} ≥ {least}{tail}" if least is not None else f"{what} ≤ {most}{tail}"
    if t == "freshness":
        return f"newest ≤ {_age(float(e['max_age_seconds']))} old"
    if t == "sql":
        if "op" in e:
            return f"{e['op']} {_num(e['value'])}"
        return "no rows" if mostly is None else f"≤ {_pct(1 - float(mostly))} of rows"
    return str(e)
