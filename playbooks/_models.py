"""What a playbook is: signatures that recognise a root cause in signals, the
steps that treat it, how to check the fix worked, and how to undo it."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from app.taxonomy import Decision, Pipeline, RootCause
from guardrails import Risk
from tools._signals import Signal

__all__ = [
    "SignalMatcher",
    "Signature",
    "Step",
    "ValidationCheck",
    "Playbook",
    "PolicyEntry",
    "PipelineTreatment",
    "BlastRadius",
    "signal_haystack",
]

BlastRadius = Literal["record", "batch", "pipeline", "dataset", "global"]

# Fields a matcher's ``pattern`` may apply to (plus ``labels.<key>``).
_FIELDS = ("type", "stage", "error", "message", "name", "status", "level", "observed", "expected")
_FLAGS = re.IGNORECASE | re.DOTALL
# Longer texts are searched on their first and last halves of this many characters.
_MAX_TEXT = 8000
_PIPELINES = frozenset(p.value for p in Pipeline)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _compile(value: str | None, what: str) -> re.Pattern[str] | None:
    if value is None:
        return None
    try:
        return re.compile(value, _FLAGS)
    except re.error as exc:
        raise ValueError(f"{what} is not a valid regular expression: {exc}") from None


def signal_haystack(signal: Signal) -> str:
    """The text a matcher without ``field`` searches: ``signal.text()`` (so it
    starts with the signal's kind, and a log's level), followed by what
    ``text()`` leaves out for some kinds: the message and the labels. Texts
    longer than 8,000 characters keep their first and last 4,000."""
    text = signal.text()
    extra: list[str] = []
    if signal.message and signal.kind != "log" and signal.message not in text:
        extra.append(signal.message)
    if signal.error and signal.kind not in ("event",) and signal.error not in text:
        extra.append(signal.error)
    if signal.labels and signal.kind != "metric":
        extra.append(" ".join(f"{k}={v}" for k, v in sorted(signal.labels.items())))
    out = " ".join([text, *extra]) if extra else text
    if len(out) > _MAX_TEXT:  # keep the start (kind, level, first lines) and the end (the exception)
        half = _MAX_TEXT // 2
        out = out[:half] + " ... " + out[-half:]
    return out


def _field_text(signal: Signal, field: str) -> str | None:
    raw: Any = signal.labels.get(field[7:]) if field.startswith("labels.") else getattr(signal, field, None)
    return None if raw is None else str(raw)


def _numeric(signal: Signal) -> float | None:
    """A metric's value, a check's numeric observed value (else its value)."""
    candidates: list[Any] = [signal.observed, signal.value] if signal.kind == "check" else [signal.value]
    for raw in candidates:
        if raw is None or isinstance(raw, bool):
            continue
        if isinstance(raw, int | float):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw.strip().rstrip("%"))
            except ValueError:
                continue
    return None


class SignalMatcher(_Strict):
    """One condition on one signal. Every part given must hold: the kind, the
    ``name`` regex (metrics and checks), the ``pattern`` regex on ``field``
    (or on the whole text, see :func:`signal_haystack`), and ``op value`` on
    a metric's value or a check's numeric observed value. Regexes are
    searched, case-insensitively, with ``.`` matching newlines."""

    kind: Literal["event", "metric", "log", "check", "any"] = "any"
    field: str | None = None
    pattern: str | None = None
    name: str | None = None
    op: Literal[">", ">=", "<", "<=", "==", "!="] | None = None
    value: float | None = None

    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)
    _name: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> SignalMatcher:
        if self.pattern is None and self.name is None and self.op is None:
            raise ValueError("a matcher needs at least one of pattern, name, op")
        if (self.op is None) != (self.value is None):
            raise ValueError("op and value go together")
        if self.field is not None:
            if self.pattern is None:
                raise ValueError("field is given without a pattern")
            if self.field not in _FIELDS and not (self.field.startswith("labels.") and len(self.field) > 7):
                raise ValueError(f"unknown field {self.field!r} (one of {', '.join(_FIELDS)}, or labels.<key>)")
        self._pattern = _compile(self.pattern, "pattern")
        self._name = _compile(self.name, "name")
        return self

    def matches(self, signal: Signal) -> bool:
        return self._test(signal, {}, 0)

    def _test(self, signal: Signal, texts: dict[int, str], key: int) -> bool:
        """``matches``, with the whole-text rendering cached in ``texts`` under ``key``."""
        if self.kind != "any" and signal.kind != self.kind:
            return False
        if self._name is not None and not (signal.name and self._name.search(signal.name)):
            return False
        if self.op is not None and self.value is not None:
            number = _numeric(signal)
            if number is None or not _OPS[self.op](number, self.value):
                return False
        if self._pattern is not None:
            if self.field is None:
                text: str | None = texts.get(key)
                if text is None:
                    text = texts[key] = signal_haystack(signal)
            else:
                text = _field_text(signal, self.field)
            if text is None or not self._pattern.search(text):
                return False
        return True


class Signature(_Strict):
    """A pattern of signals that points to ``root_cause`` with confidence
    ``weight``: at least one ``any`` matcher matches some signal (when
    ``any`` is given), every ``all`` matcher matches some signal, and no
    signal matches a ``none`` matcher."""

    root_cause: RootCause
    weight: float = Field(ge=0.0, le=1.0)
    any: list[SignalMatcher] = Field(default_factory=list)
    all: list[SignalMatcher] = Field(default_factory=list)
    none: list[SignalMatcher] = Field(default_factory=list)
    description: str = Field(min_length=1)
    # What the diagnosis says when this signature recognised the cause: a
    # template over the incident's metrics (see playbooks._evidence), e.g.
    # "backlog ${latest.annotation_backlog.value} tasks".
    note: str | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _needs_positive(self) -> Signature:
        if not self.any and not self.all:
            raise ValueError("a signature needs at least one matcher in any or all")
        return self

    def match(self, signals: Iterable[Signal]) -> list[Signal] | None:
        """The signals that support this signature, in the order given, or None."""
        pool = list(signals)
        texts: dict[int, str] = {}

        def hit(m: SignalMatcher, i: int) -> bool:
            return m._test(pool[i], texts, i)

        found_any: list[int] = []
        if self.any:
            found_any = [i for i in range(len(pool)) if any(hit(m, i) for m in self.any)]
            if not found_any:
                return None
        hits = set(found_any)
        for matcher in self.all:
            found = [i for i in range(len(pool)) if hit(matcher, i)]
            if not found:
                return None
            hits.update(found)
        if any(hit(m, i) for m in self.none for i in range(len(pool))):
            return None
        return [pool[i] for i in sorted(hits)]


class Step(_Strict):
    """One action: ``tool`` with ``args`` (templates allowed, see
    :mod:`playbooks._template`). With ``until: ok`` it is repeated up to
    ``max_attempts`` times, waiting ``backoff_s`` and then ``backoff_factor``
    times longer between tries, until the tool returns ok."""

    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    until: Literal["ok"] | None = None
    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff_s: float = Field(default=0.0, ge=0.0, le=600.0)
    backoff_factor: float = Field(default=2.0, ge=1.0, le=10.0)
    on_error: Literal["abort", "continue"] = "abort"

    @model_validator(mode="after")
    def _attempts_need_until(self) -> Step:
        if self.max_attempts > 1 and self.until is None:
            raise ValueError("max_attempts > 1 needs until: ok (what would end the repeats?)")
        return self


class ValidationCheck(_Strict):
    """How the validation agent tells that a fix worked."""

    check: Literal["no_failing_signals", "run_succeeded", "check_passes", "signal_absent"]
    name: str | None = None
    matcher: SignalMatcher | None = None

    @model_validator(mode="after")
    def _parts(self) -> ValidationCheck:
        if self.check == "check_passes" and not self.name:
            raise ValueError("check_passes needs the check's name")
        if self.check == "signal_absent" and self.matcher is None:
            raise ValueError("signal_absent needs a matcher")
        if self.check != "check_passes" and self.name is not None:
            raise ValueError(f"name only applies to check_passes, not {self.check}")
        if self.check != "signal_absent" and self.matcher is not None:
            raise ValueError(f"matcher only applies to signal_absent, not {self.check}")
        return self


class Playbook(_Strict):
    """A catalogued remediation. ``risk`` is at least the guardrail risk of
    every tool it runs; ``rollback`` None means: undo with the inverses the
    tools recorded while the steps ran, newest first."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    description: str = Field(min_length=1)
    root_causes: list[RootCause] = Field(min_length=1)
    pipelines: list[Pipeline] = Field(min_length=1)
    risk: Risk
    blast_radius: BlastRadius
    reversible: bool
    signatures: list[Signature] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)
    validation: list[ValidationCheck] = Field(default_factory=list)
    validate_timeout_s: float = Field(default=60.0, ge=0.0, le=3600.0)
    rollback: list[Step] | None = None


def _check_treatment(playbook: str | None, decision: Decision) -> None:
    if decision == Decision.NO_ACTION and playbook is not None:
        raise ValueError("decision no_action takes no playbook (use playbook: null)")
    if decision != Decision.NO_ACTION and playbook is None:
        raise ValueError(f"decision {decision.value} needs a playbook")


class PipelineTreatment(_Strict):
    """A pipeline's own default treatment of a root cause."""

    playbook: str | None
    decision: Decision

    @model_validator(mode="after")
    def _consistent(self) -> PipelineTreatment:
        _check_treatment(self.playbook, self.decision)
        return self


class PolicyEntry(_Strict):
    """The default treatment of a root cause and how far it may run alone;
    ``pipelines`` overrides both for named pipelines."""

    root_cause: RootCause
    playbook: str | None
    decision: Decision
    pipelines: dict[Pipeline, PipelineTreatment] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> PolicyEntry:
        _check_treatment(self.playbook, self.decision)
        return self

    def for_pipeline(self, pipeline: str | None) -> PolicyEntry:
        """This entry as it applies to ``pipeline`` (its override, if any)."""
        own = self.pipelines.get(Pipeline(pipeline)) if pipeline in _PIPELINES else None
        if own is None:
            return self
        return PolicyEntry(root_cause=self.root_cause, playbook=own.playbook, decision=own.decision)
