"""Monitor rules: which signals are symptoms. No symptom, no incident."""

from __future__ import annotations

from agents._state import AgentSettings
from tools import Signal

__all__ = ["symptoms", "fingerprint", "GENERIC"]


def symptoms(signals: list[Signal], settings: AgentSettings) -> list[Signal]:
    """Failing events, error logs and failed checks, runs whose quarantine
    or duplicate ratio crossed its alert threshold, and reported metrics
    that crossed theirs (``settings.metric_alerts``)."""
    out: list[Signal] = []
    for s in signals:
        if s.failing:
            out.append(s)
        elif s.kind == "metric" and s.value is not None:
            name = (s.name or "").lower()
            if name == "quarantine_ratio" and s.value > settings.quarantine_ratio_alert:
                out.append(s)
                out.extend(_dominant_reasons(signals, s))
            elif name == "duplicate_ratio" and s.value > settings.duplicate_ratio_alert:
                out.append(s)
            elif any(a.fires(s.name, s.value, s.labels) for a in settings.metric_alerts):
                out.append(s)
    return out


def _dominant_reasons(signals: list[Signal], ratio: Signal) -> list[Signal]:
    """The quarantine reasons behind a ratio alert (same run): what the flood is made of."""
    same_run = [
        s for s in signals
        if s.kind == "metric" and s.name == "quarantined_share" and s.t == ratio.t and s.value
    ]
    total = sum(s.value or 0 for s in same_run)
    return [s for s in same_run if total and (s.value or 0) / total >= 0.3]


def fingerprint(signal: Signal) -> str:
    """What makes two symptoms "the same": the kind, what fired, where, and
    the error's class or the quarantine reason — not timestamps or counts."""
    error_class = (signal.error or "").split(":", 1)[0].strip()
    what = signal.type or signal.name or (signal.level or "")
    detail = error_class or signal.labels.get("reason", "")
    if signal.kind == "log":
        detail = " ".join((signal.message or "").split()[:4])
    return f"{signal.kind}:{what}:{signal.stage or ''}:{detail}"


# Too generic to say two incidents are the same problem.
GENERIC = {"metric:quarantine_ratio::", "event:run_failed::"}
