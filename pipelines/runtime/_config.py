"""Pipeline configuration: pydantic models with declared bounds on every
tunable, versioned in the metadata DB and live-adjustable between batches."""

from __future__ import annotations

from typing import Any, TypeVar

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.errors import BoundsError, NotFoundError
from pipelines.runtime._events import EventLog
from pipelines.runtime._models import ConfigVersionRow

__all__ = ["PipelineConfig", "ConfigStore", "bounds_of", "tunable"]

C = TypeVar("C", bound="PipelineConfig")


def tunable(default: Any, *, ge: float, le: float, description: str) -> Any:
    """A field agents may change at run time, always within ``[ge, le]``."""
    return Field(default, ge=ge, le=le, description=description, json_schema_extra={"tunable": True})


class PipelineConfig(BaseModel):
    """Tunables every pipeline shares. Subclasses add their own."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    batch_size: int = tunable(64, ge=1, le=4096, description="Records per batch.")
    workers: int = tunable(2, ge=1, le=32, description="Threads for per-record stages.")
    max_stage_retries: int = tunable(2, ge=0, le=10, description="Retries of a failing stage.")
    retry_backoff_s: float = tunable(0.2, ge=0.0, le=60.0, description="First retry delay; doubles.")


def bounds_of(model: type[PipelineConfig]) -> dict[str, tuple[float | None, float | None]]:
    """``{tunable: (min, max)}`` read from the model's declared constraints."""
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if not (isinstance(extra, dict) and extra.get("tunable")):
            continue
        lo = hi = None
        for meta in info.metadata:
            if isinstance(meta, annotated_types.Ge):
                lo = float(meta.ge)  # type: ignore[arg-type]
            elif isinstance(meta, annotated_types.Le):
                hi = float(meta.le)  # type: ignore[arg-type]
        out[name] = (lo, hi)
    return out


def _validate(model: type[C], values: dict[str, Any]) -> C:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise BoundsError(f"{model.__name__}.{key}={err.get('input')!r}: {err['msg']}") from None


class ConfigStore:
    """Versioned config per (pipeline, dataset); every change is a new version
    with who changed what and why."""

    def __init__(self, engine: Engine, events: EventLog | None = None) -> None:
        self._engine = engine
        self._events = events

    def _latest(self, s: Session, pipeline: str, dataset: str) -> ConfigVersionRow | None:
        q = (
            select(ConfigVersionRow)
            .where(ConfigVersionRow.pipeline == pipeline, ConfigVersionRow.dataset == dataset)
            .order_by(ConfigVersionRow.version.desc())  # type: ignore[attr-defined]
            .limit(1)
        )
        return s.exec(q).first()

    def current(self, pipeline: str, dataset: str, model: type[C]) -> tuple[int, C]:
        """The latest version, creating version 1 from the defaults if none exists."""
        with Session(self._engine) as s:
            row = self._latest(s, pipeline, dataset)
            if row is not None:
                return row.version, _validate(model, row.values)
        cfg = model()
        version = self._write(pipeline, dataset, cfg.model_dump(), {}, "system", "defaults")
        return version, cfg

    def latest_version(self, pipeline: str, dataset: str) -> int:
        with Session(self._engine) as s:
            v = s.exec(
                select(func.max(ConfigVersionRow.version)).where(
                    ConfigVersionRow.pipeline == pipeline, ConfigVersionRow.dataset == dataset
                )
            ).first()
        return int(v or 0)

    def set(
        self,
        pipeline: str,
        dataset: str,
        model: type[C],
        changes: dict[str, Any],
        *,
        actor: str,
        reason: str,
    ) -> tuple[int, C]:
        """Apply ``changes`` as a new version; out-of-bounds values raise BoundsError."""
        _, cfg = self.current(pipeline, dataset, model)
        values = cfg.model_dump()
        unknown = set(changes) - set(values)
        if unknown:
            raise BoundsError(f"{model.__name__} has no setting {sorted(unknown)[0]!r}")
        diff = {k: [values[k], v] for k, v in changes.items() if values[k] != v}
        values.update(changes)
        new = _validate(model, values)
        version = self._write(pipeline, dataset, new.model_dump(), diff, actor, reason)
        if self._events is not None and diff:
            self._events.emit(
                pipeline,
                "config_changed",
                dataset=dataset,
                message=f"{actor} changed {', '.join(f'{k} {a!r} -> {b!r}' for k, (a, b) in diff.items())}: {reason}",
                version=version,
                actor=actor,
                changed=diff,
            )
        return version, new

    def restore(
        self, pipeline: str, dataset: str, model: type[C], version: int, *, actor: str, reason: str
    ) -> tuple[int, C]:
        """A new version whose values are those of ``version``."""
        old = self.get(pipeline, dataset, version)
        return self.set(pipeline, dataset, model, old.values, actor=actor, reason=reason)

    def get(self, pipeline: str, dataset: str, version: int) -> ConfigVersionRow:
        with Session(self._engine) as s:
            row = s.exec(
                select(ConfigVersionRow).where(
                    ConfigVersionRow.pipeline == pipeline,
                    ConfigVersionRow.dataset == dataset,
                    ConfigVersionRow.version == version,
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no config version {version} for {pipeline}/{dataset}")
        return row

    def history(self, pipeline: str, dataset: str) -> list[ConfigVersionRow]:
        with Session(self._engine) as s:
            return list(
                s.exec(
                    select(ConfigVersionRow)
                    .where(ConfigVersionRow.pipeline == pipeline, ConfigVersionRow.dataset == dataset)
                    .order_by(ConfigVersionRow.version)  # type: ignore[arg-type]
                )
            )

    def mark(self, pipeline: str, dataset: str, version: int, *, good: bool) -> None:
        with Session(self._engine) as s:
            row = s.exec(
                select(ConfigVersionRow).where(
                    ConfigVersionRow.pipeline == pipeline,
                    ConfigVersionRow.dataset == dataset,
                    ConfigVersionRow.version == version,
                )
            ).first()
            if row is not None:
                row.good = good
                s.add(row)
                s.commit()

    def last_good(self, pipeline: str, dataset: str) -> ConfigVersionRow | None:
        """The newest version a run succeeded on (or the defaults if none did)."""
        rows = self.history(pipeline, dataset)
        for row in reversed(rows):
            if row.good:
                return row
        return rows[0] if rows else None

    def _write(
        self, pipeline: str, dataset: str, values: dict[str, Any], diff: dict[str, Any], actor: str, reason: str
    ) -> int:
        with Session(self._engine) as s:
            latest = self._latest(s, pipeline, dataset)
            version = (latest.version if latest else 0) + 1
            s.add(
                ConfigVersionRow(
                    pipeline=pipeline,
                    dataset=dataset,
                    version=version,
                    values=values,
                    changed=diff,
                    actor=actor,
                    reason=reason,
                )
            )
            s.commit()
        return version
