"""Bounds on a config change: the value must lie within both the config
model's declared range and the policy's tighter one, and may move at most
``max_step_factor`` away from the current value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guardrails._policy import GuardrailPolicy

__all__ = ["ModelBounds", "EffectiveBounds", "effective_bounds", "bounds_refusal"]

# pipeline -> tunable -> (min, max), as the pipeline config models declare them.
ModelBounds = Mapping[str, Mapping[str, tuple[float | None, float | None]]]


@dataclass(frozen=True)
class EffectiveBounds:
    min: float | None
    max: float | None
    max_step_factor: float | None

    def describe(self) -> str:
        lo = "-inf" if self.min is None else _fmt(self.min)
        hi = "+inf" if self.max is None else _fmt(self.max)
        step = "" if self.max_step_factor is None else f", step factor <= {_fmt(self.max_step_factor)}"
        return f"[{lo}, {hi}]{step}"


def _fmt(x: float) -> str:
    return f"{x:g}"


def _tighter(a: float | None, b: float | None, lower: bool) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b) if lower else min(a, b)


def effective_bounds(
    policy: GuardrailPolicy, model_bounds: ModelBounds, pipeline: str, key: str
) -> EffectiveBounds | None:
    """The intersection of the model's and the policy's bounds on ``key``;
    None when ``key`` is not a tunable of ``pipeline``."""
    declared = model_bounds.get(pipeline, {}).get(key)
    if declared is None:
        return None
    mlo, mhi = declared
    tight = policy.bounds_for(pipeline, key)
    if tight is None:
        return EffectiveBounds(mlo, mhi, None)
    return EffectiveBounds(
        _tighter(mlo, tight.min, lower=True),
        _tighter(mhi, tight.max, lower=False),
        tight.max_step_factor,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None


def bounds_refusal(
    policy: GuardrailPolicy,
    model_bounds: ModelBounds,
    pipeline: str,
    key: str,
    new_value: Any,
    old_value: Any,
) -> str | None:
    """Why setting ``pipeline``'s ``key`` from ``old_value`` to ``new_value``
    is refused, or None when it is within bounds."""
    eff = effective_bounds(policy, model_bounds, pipeline, key)
    name = f"{pipeline}.{key}"
    if eff is None:
        return f"{name} is not a tunable of the {pipeline!r} pipeline's config"
    if eff.min is not None and eff.max is not None and eff.min > eff.max:
        return f"{name} has no allowed value: the model's and the policy's bounds do not overlap"
    if new_value is None:
        return f"{name}: no new value given"
    if eff.min is None and eff.max is None and eff.max_step_factor is None:
        return None
    new = _number(new_value)
    if new is None:
        return f"{name}={new_value!r} is not a finite number; bounds {eff.describe()}"
    if eff.min is not None and new < eff.min:
        return f"{name}={_fmt(new)} is below the minimum {_fmt(eff.min)}; bounds {eff.describe()}"
    if eff.max is not None and new > eff.max:
        return f"{name}={_fmt(new)} is above the maximum {_fmt(eff.max)}; bounds {eff.describe()}"
    if eff.max_step_factor is None or old_value is None:
        return None
    old = _number(old_value)
    if old is None:
        return f"{name}: the current value {old_value!r} is not a finite number; cannot bound the step"
    factor = _step_factor(old, new)
    if factor > eff.max_step_factor:
        shown = "an unbounded factor" if math.isinf(factor) else f"a factor of {factor:.3g}"
        return (
            f"{name}: {_fmt(old)} -> {_fmt(new)} is {shown}, more than the "
            f"allowed step factor {_fmt(eff.max_step_factor)}"
        )
    return None


def _step_factor(old: float, new: float) -> float:
    """``max(|old|, |new|) / min(|old|, |new|)``; infinite across zero or a sign change."""
    if old == new:
        return 1.0
    if old == 0 or new == 0 or (old < 0) != (new < 0):
        return math.inf
    a, b = abs(old), abs(new)
    return max(a, b) / min(a, b)
