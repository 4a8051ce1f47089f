"""The guardrail policy: risk per action, tighter bounds per tunable, attempt
and rate budgets, the in-flight limit and dry-run mode, read from YAML."""

from __future__ import annotations

from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.errors import ConfigError
from app.parsing import load_yaml_mapping, validation_summary

__all__ = [
    "ACTIONS",
    "ALL_PIPELINES",
    "Risk",
    "TunableBounds",
    "RateLimit",
    "RateLimits",
    "GuardrailPolicy",
    "load_policy",
    "default_policy_path",
]

# The action tools the shipped policy rates. A policy may rate more.
ACTIONS: tuple[str, ...] = (
    "retry_stage",
    "set_config",
    "restore_config",
    "pause_pipeline",
    "resume_pipeline",
    "quarantine_batch",
    "rollback_table",
    "scale_workers",
    "notify",
    "probe_source",
    "raise_autolabel_threshold",
    "route_to_review",
    "quarantine_annotator",
    "fallback_model",
    "reenrich",
)

# The scope that means "every pipeline" in bounds and in the kill switch.
ALL_PIPELINES = "*"


class Risk(StrEnum):
    """How much harm an action can do; ordered from least to most."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RISK_ORDER.index(self)


_RISK_ORDER = (Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TunableBounds(_Strict):
    """A policy's limits on one tunable; every part is optional."""

    min: float | None = None
    max: float | None = None
    max_step_factor: float | None = Field(default=None, ge=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> TunableBounds:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    def intersect(self, other: TunableBounds) -> TunableBounds:
        """The tighter of both on every part."""
        return TunableBounds(
            min=_pick(self.min, other.min, max),
            max=_pick(self.max, other.max, min),
            max_step_factor=_pick(self.max_step_factor, other.max_step_factor, min),
        )


def _pick(a: float | None, b: float | None, choose: Any) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))


class RateLimit(_Strict):
    """At most ``max_actions`` executed or failed actions per ``window_s`` seconds."""

    max_actions: int = Field(ge=1)
    window_s: float = Field(gt=0)


class RateLimits(_Strict):
    per_pipeline: RateLimit = RateLimit(max_actions=40, window_s=3600)
    global_: RateLimit = Field(default=RateLimit(max_actions=120, window_s=3600), alias="global")
    # Overrides of ``per_pipeline`` for named pipelines.
    pipelines: dict[str, RateLimit] = Field(default_factory=dict)

    def for_pipeline(self, pipeline: str) -> RateLimit:
        return self.pipelines.get(pipeline, self.per_pipeline)


class GuardrailPolicy(_Strict):
    """What the agents may do on their own. Load it with :func:`load_policy`."""

    risk: dict[str, Risk] = Field(min_length=1)
    bounds: dict[str, dict[str, TunableBounds]] = Field(default_factory=dict)
    max_attempts_per_incident: int = Field(default=3, ge=1)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    max_in_flight_per_pipeline: int = Field(
        default=1, ge=1, le=1, description="Only one remediation per pipeline is supported."
    )
    # Actions that change nothing in a pipeline: they use none of an incident's
    # attempts and need no in-flight lock, so an escalation can always go out.
    non_mutating: frozenset[str] = frozenset({"notify", "probe_source"})
    dry_run: bool = False
    approval_timeout_s: float = Field(default=3600, gt=0)

    @field_validator("non_mutating")
    @classmethod
    def _known_non_mutating(cls, value: frozenset[str], info: ValidationInfo) -> frozenset[str]:
        unknown = sorted(value - set(info.data.get("risk") or {}))
        if unknown:
            raise ValueError(f"{unknown[0]!r} has no risk in the policy")
        return value

    def risk_of(self, action: str) -> Risk | None:
        """The declared risk of ``action``, or None when the policy does not know it."""
        return self.risk.get(action)

    def bounds_for(self, pipeline: str, key: str) -> TunableBounds | None:
        """The policy's limits on ``pipeline``'s ``key``: the ``"*"`` entry
        intersected with the pipeline's own, or None when neither exists."""
        shared = self.bounds.get(ALL_PIPELINES, {}).get(key)
        own = self.bounds.get(pipeline, {}).get(key) if pipeline != ALL_PIPELINES else None
        if shared is None:
            return own
        if own is None:
            return shared
        return shared.intersect(own)


def default_policy_path() -> Path:
    """The policy shipped with the package."""
    return Path(str(resources.files("guardrails").joinpath("policy.yaml")))


def load_policy(path: str | Path | None = None) -> GuardrailPolicy:
    """Read and validate a policy file (the shipped default when ``path`` is None).

    Raises :class:`ConfigError` naming the file and the offending field.
    """
    file = Path(path) if path is not None else default_policy_path()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"guardrail policy {file}: cannot read: {exc.strerror or exc}") from None
    data = load_yaml_mapping(text, origin=f"guardrail policy {file}", what="policy", error=ConfigError)
    try:
        return GuardrailPolicy.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"guardrail policy {file}: field {validation_summary(exc)}") from None
