"""The fault base class and the wrappers faults install.

A fault changes the real world the way a real failure would: it wraps a
job's source (what the upstream sends, whether it answers) or its pipeline
spec (what the code does), or it writes to the real stores (a config
version, an Iceberg snapshot). Nothing here fakes an observation: the
runner, the stores and the event log see exactly what they would see if the
failure were real.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from app.errors import InputError
from app.taxonomy import RootCause
from pipelines.runtime import Item, Job, PipelineConfig, Runtime, Source, SourceRecord, Stage, StageContext

if TYPE_CHECKING:
    from sqlmodel import Session

    from pipelines.runtime import PipelineSpec

__all__ = ["Fault", "FaultySource", "ExtraStageSpec", "require"]


class Fault(ABC):
    """One incident class, injectable into a real job.

    Subclasses set the class attributes and implement :meth:`_install`; they
    may override :meth:`_undo` (what :meth:`heal` reverts in the stores) and
    :meth:`params`. Wrappers a fault installs stay inert once it is healed,
    and :meth:`heal` also takes them off the job.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    pipeline: ClassVar[str] = "ingestion"
    expected_root_cause: ClassVar[RootCause]
    expected_playbook: ClassVar[str]
    # True for a fault that strikes the stores between runs rather than a run itself.
    between_runs: ClassVar[bool] = False

    def __init__(self) -> None:
        self._active = False
        self._applied = False
        self._job: Job | None = None
        self._rt: Runtime | None = None
        self._source_wrappers: list[Callable[[Source], Source]] = []
        self._spec_wrappers: list[Callable[[PipelineSpec], PipelineSpec]] = []
        self.effects: dict[str, Any] = {}
        """What :meth:`apply` did to the world (versions, snapshot ids, counts)."""

    # -- lifecycle ---------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether the fault still affects the world."""
        return self._active

    @property
    def applied(self) -> bool:
        return self._applied

    def apply(self, job: Job, rt: Runtime) -> None:
        """Inject the fault into ``job`` (and ``rt``'s stores)."""
        if self._applied:
            raise InputError(f"fault {self.name!r} is already applied (to {self._job.key if self._job else '?'})")
        if job.pipeline != self.pipeline:
            raise InputError(f"fault {self.name!r} targets {self.pipeline} jobs, not {job.key}")
        self._job, self._rt = job, rt
        self._install(job, rt)
        self._applied = self._active = True

    @abstractmethod
    def _install(self, job: Job, rt: Runtime) -> None:
        """Install wrappers (through :meth:`_wrap_source` / :meth:`_wrap_spec`) or write to the stores."""

    def heal(self) -> None:
        """End the fault: revert what it wrote, take its wrappers off the job."""
        if not self._applied:
            return
        if self._active:
            self._undo()
        self._active = False
        job = self._job
        if job is not None:
            for sw in self._source_wrappers:
                if sw in job.source_wrappers:
                    job.source_wrappers.remove(sw)
            for pw in self._spec_wrappers:
                if pw in job.spec_wrappers:
                    job.spec_wrappers.remove(pw)

    def _undo(self) -> None:
        """Revert writes to the stores; wrappers need nothing (they check :attr:`active`)."""
        return None

    # -- helpers for subclasses -------------------------------------------
    def _wrap_source(self, job: Job, wrapper: Callable[[Source], Source]) -> None:
        self._source_wrappers.append(wrapper)
        job.source_wrappers.append(wrapper)

    def _wrap_spec(self, job: Job, wrapper: Callable[[PipelineSpec], PipelineSpec]) -> None:
        self._spec_wrappers.append(wrapper)
        job.spec_wrappers.append(wrapper)

    @property
    def rt(self) -> Runtime:
        if self._rt is None:
            raise InputError(f"fault {self.name!r} has not been applied")
        return self._rt

    @property
    def job(self) -> Job:
        if self._job is None:
            raise InputError(f"fault {self.name!r} has not been applied")
        return self._job

    def _config_model(self) -> type[PipelineConfig]:
        from pipelines.ingestion import IngestionConfig

        return IngestionConfig

    def _current_config(self, job: Job, rt: Runtime) -> PipelineConfig:
        """The job's config now, without writing the defaults as version 1."""
        model = self._config_model()
        if rt.configs.latest_version(job.pipeline, job.dataset) == 0:
            return model()
        return rt.configs.current(job.pipeline, job.dataset, model)[1]

    # -- reporting ---------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The parameters this fault was built with."""
        return {}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The constructor's parameters and their defaults."""
        sig = inspect.signature(cls.__init__)
        return {
            p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    @classmethod
    def info(cls) -> dict[str, Any]:
        """The class-level description, for listings."""
        return {
            "name": cls.name,
            "pipeline": cls.pipeline,
            "expected_root_cause": str(cls.expected_root_cause),
            "expected_playbook": cls.expected_playbook,
            "description": cls.description,
            "params": cls.defaults(),
        }

    def describe(self) -> dict[str, Any]:
        return {
            **self.info(),
            "params": self.params(),
            "applied": self._applied,
            "active": self.active,
            "job": self._job.key if self._job else None,
            "effects": dict(self.effects),
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def require(ok: bool, fault: str, message: str) -> None:
    """Raise InputError for a bad fault parameter."""
    if not ok:
        raise InputError(f"fault {fault!r}: {message}")


# --------------------------------------------------------------------------- wrappers


class FaultySource:
    """A source around another one; subclasses change :meth:`read` (and
    :meth:`probe`). Everything else is the inner source's, so a run over the
    wrapped source is the same run (same ``uri``, resumes the same way)."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner
        self.uri = inner.uri

    def read(self, n: int) -> list[SourceRecord]:
        return self.inner.read(n)

    def ack(self, records: Sequence[SourceRecord]) -> None:
        self.inner.ack(records)

    def close(self) -> None:
        self.inner.close()

    def probe(self) -> str | None:
        probe = getattr(self.inner, "probe", None)
        return probe() if callable(probe) else None

    def __getattr__(self, name: str) -> Any:
        # count(), manifest_unmatched and the like: whatever the inner source offers.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class DelegatingSpec:
    """A pipeline spec around another one; subclasses change :meth:`stages`.
    Everything else is the inner spec's."""

    def __init__(self, inner: PipelineSpec) -> None:
        self.inner = inner
        self.name = inner.name
        self.config_model = inner.config_model

    def stages(self) -> list[Stage]:
        return list(self.inner.stages())

    def open(self, ctx: StageContext) -> None:
        self.inner.open(ctx)

    def commit_rows(self, items: list[Item], ctx: StageContext, session: Session) -> None:
        self.inner.commit_rows(items, ctx, session)

    def after_commit(self, items: list[Item], ctx: StageContext) -> None:
        self.inner.after_commit(items, ctx)

    def finalize(self, ctx: StageContext) -> int | None:
        return self.inner.finalize(ctx)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


class ExtraStageSpec(DelegatingSpec):
    """A pipeline spec with one extra stage inserted after ``after`` (or first
    when ``after`` is None or absent)."""

    def __init__(self, inner: PipelineSpec, stage: Stage, *, after: str | None) -> None:
        super().__init__(inner)
        self._stage = stage
        self._after = after

    def stages(self) -> list[Stage]:
        stages = list(self.inner.stages())
        names = [s.name for s in stages]
        at = names.index(self._after) + 1 if self._after in names else 0
        stages.insert(at, self._stage)
        return stages
