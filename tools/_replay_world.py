"""The replayed world's timeline: a case's recorded signals, and what the
world shows after each playbook decided its future.

- ``recovered``: from the decision on, the case's failing signals stop;
  ``recovery_delay_s`` later healthy ones appear (a ``run_succeeded`` event,
  passing versions of the failing checks, metrics back to their baseline:
  ratios and error or failure counts to 0, others to their first value).
- ``still_failing``: the case's failing signals and its metrics repeat every
  ``repeat_every_s`` (or the span of the failures, if longer), from the
  decision on.
- ``worse``: the same repeats with the metrics worse (ratios up, counts
  doubled), plus a failed run and an error line each time.

A later decision ends the previous one's span and starts its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from tools._signals import Signal

__all__ = ["WorldOutcome", "ReplayTimeline", "playbook_of_key"]

WorldOutcome = Literal["recovered", "still_failing", "worse"]
_RATIO = ("ratio", "share", "fraction", "rate", "pct", "percent")
# Counts of things going wrong: nothing goes wrong once the world recovered.
_ERRORS = ("error", "failure", "failed")


def playbook_of_key(key: str | None) -> tuple[str | None, bool]:
    """(playbook, is_undo) from an idempotency key of the act node's format,
    ``<incident>:<attempt>:<playbook>:<step>:<rep>[:undo]``; (None, False)
    for any other shape (``<incident>:escalate``)."""
    parts = (key or "").split(":")
    if len(parts) in (5, 6) and parts[2] and (len(parts) == 5 or parts[5] == "undo"):
        return parts[2], len(parts) == 6
    return None, False


@dataclass(frozen=True)
class _Segment:
    start: float
    outcome: str
    playbook: str


def _is_error_count(sig: Signal) -> bool:
    name = (sig.name or "").lower()
    return any(w in name for w in _ERRORS)


def _is_ratio(sig: Signal) -> bool:
    name = (sig.name or "").lower()
    return any(w in name for w in _RATIO)


class ReplayTimeline:
    """Signals by case time, before and after the decisions."""

    def __init__(
        self, signals: Sequence[Signal], *, started_at: datetime, pipeline: str,
        recovery_delay_s: float = 2.0, repeat_every_s: float = 30.0,
    ) -> None:
        self.started_at = started_at
        self.pipeline = pipeline
        self.recovery_delay_s = recovery_delay_s
        self.repeat_every_s = repeat_every_s
        self._signals = sorted((self.stamp(s, s.t) for s in signals), key=lambda s: s.t)
        self._block = [s for s in self._signals if s.failing or s.kind == "metric"]
        self._segments: list[_Segment] = []
        self._emitted: list[Signal] = []

    # -- decisions -----------------------------------------------------------
    def decide(self, t: float, outcome: str, playbook: str) -> None:
        self._segments.append(_Segment(t, outcome, playbook))

    @property
    def segments(self) -> list[tuple[float, str, str]]:
        """(start t, outcome, playbook) of each decision, in order."""
        return [(s.start, s.outcome, s.playbook) for s in self._segments]

    def outcome_now(self) -> str | None:
        """The outcome deciding the world now; None before any playbook acted."""
        return self._segments[-1].outcome if self._segments else None

    def failing(self, now: float) -> bool:
        """Whether the world is failing at ``now``."""
        outcome = self.outcome_now()
        if outcome is not None:
            return outcome != "recovered"
        return any(s.failing for s in self._signals if s.t <= now)

    def emit(self, t: float, **fields: Any) -> None:
        """A signal an action itself caused (a config change, a notification)."""
        self._emitted.append(self.stamp(Signal(**fields), t))

    # -- what is visible ---------------------------------------------------------
    def visible(self, now: float) -> list[Signal]:
        """Every signal the world shows up to ``now``, oldest first."""
        first = self._segments[0].start if self._segments else float("inf")
        out = [
            s for s in self._signals
            if s.t <= now and not (s.t >= first and s.failing and self._segment_at(s.t).outcome == "recovered")
        ]
        for i, seg in enumerate(self._segments):
            end = self._segments[i + 1].start if i + 1 < len(self._segments) else float("inf")
            out.extend(self._generated(seg, end, now))
        out.extend(s for s in self._emitted if s.t <= now)
        return sorted(out, key=lambda s: s.t)

    def _segment_at(self, t: float) -> _Segment:
        return [s for s in self._segments if s.start <= t][-1]

    def _generated(self, seg: _Segment, end: float, now: float) -> list[Signal]:
        if seg.outcome == "recovered":
            t = seg.start + self.recovery_delay_s
            return self._healthy(t, seg.playbook) if t < end and t <= now else []
        out: list[Signal] = []
        if not self._block:
            return out
        t0 = self._block[0].t
        base = seg.start
        while base < end and base <= now:
            for s in self._block:
                t = base + (s.t - t0)
                if t < end and t <= now:
                    out.append(self._worse(s, t) if seg.outcome == "worse" else self.stamp(s, t))
            if seg.outcome == "worse":
                out.extend(self._more_failures(base, seg.playbook))
            base += max(self.repeat_every_s, self._block[-1].t - t0 + 1.0)
        return out

    def _healthy(self, t: float, playbook: str) -> list[Signal]:
        out = [Signal(kind="event", type="run_succeeded", after=playbook)]
        checks: dict[str, Signal] = {}
        series: dict[tuple[str, tuple[tuple[str, str], ...]], Signal] = {}
        for s in self._signals:
            if s.kind == "check" and s.failing and s.name:
                checks.setdefault(s.name, s)
            elif s.kind == "metric" and s.name:
                series.setdefault((s.name, tuple(sorted(s.labels.items()))), s)
        for name, s in checks.items():
            ok = s.expected if s.expected is not None else 0
            out.append(Signal(kind="check", name=name, status="pass", observed=ok, expected=s.expected))
        for s in series.values():
            # Back to normal: ratios and error counts to 0, anything else to
            # its first (pre-incident) value.
            value = 0.0 if _is_ratio(s) or _is_error_count(s) else float(s.value or 0.0)
            out.append(Signal(kind="metric", name=s.name, labels=s.labels, value=value))
        return [self.stamp(s, t) for s in out]

    def _worse(self, s: Signal, t: float) -> Signal:
        if s.kind != "metric" or s.value is None:
            return self.stamp(s, t)
        value = min(1.0, s.value * 1.5 + 0.1) if _is_ratio(s) and 0 <= s.value <= 1 else s.value * 2
        return self.stamp(s.model_copy(update={"value": round(value, 4)}), t)

    def _more_failures(self, t: float, playbook: str) -> list[Signal]:
        error = f"more failures since {playbook} ran: the error rate went up"
        return [
            self.stamp(Signal(kind="event", type="run_failed", error=error), t),
            self.stamp(Signal(kind="log", level="error", message=error), t),
        ]

    def stamp(self, s: Signal, t: float) -> Signal:
        """``s`` at case time ``t``, with its timestamp and pipeline."""
        return s.model_copy(
            update={"t": round(t, 3), "ts": self.started_at + timedelta(seconds=t), "pipeline": self.pipeline}
        )
