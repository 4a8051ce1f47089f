"""The bars an eval run must clear (``evals/thresholds.yaml``), so CI can gate on them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from app.errors import ConfigError

__all__ = ["Threshold", "ThresholdCheck", "check_thresholds", "default_thresholds_file", "load_thresholds"]


class Threshold(BaseModel):
    """``min`` and/or ``max`` on one total."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Threshold:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        return self


class ThresholdCheck(BaseModel):
    metric: str
    min: float | None
    max: float | None
    value: float | None
    ok: bool

    def describe(self) -> str:
        bound = " and ".join(p for p in (f">= {self.min:g}" if self.min is not None else "",
                                         f"<= {self.max:g}" if self.max is not None else "") if p)
        return f"{self.metric} {bound}"


def default_thresholds_file() -> Path:
    return Path(str(resources.files("evals").joinpath("thresholds.yaml")))


def load_thresholds(path: Path | None = None, *, known: set[str] | None = None) -> dict[str, Threshold]:
    """Read the thresholds; :class:`ConfigError` names the file and key when
    one is malformed or is not a total the harness computes (``known``)."""
    file = path or default_thresholds_file()
    try:
        data: Any = yaml.safe_load(file.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the thresholds: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping of total -> {{min: x}} or {{max: x}}")
    out: dict[str, Threshold] = {}
    for key, raw in data.items():
        if known is not None and key not in known:
            raise ConfigError(f"{file}: field {key}: not a total the harness computes; known: {', '.join(sorted(known))}")
        try:
            out[str(key)] = Threshold.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in (key, *err["loc"]))
            raise ConfigError(f"{file}: field {loc}: {str(err['msg']).removeprefix('Value error, ')}") from None
    return out


def check_thresholds(totals: dict[str, Any], thresholds: dict[str, Threshold]) -> list[ThresholdCheck]:
    """Each threshold against ``totals``; a total that could not be computed
    (no cases of that kind) misses its threshold."""
    out = []
    for metric, th in thresholds.items():
        value = totals.get(metric)
        ok = isinstance(value, int | float) and (th.min is None or value >= th.min) and (th.max is None or value <= th.max)
        out.append(ThresholdCheck(metric=metric, min=th.min, max=th.max, value=value, ok=bool(ok)))
    return out
