"""A job: one pipeline over one source for one dataset, runnable again and
again (a retry resumes, skipping what is done). The supervisor and the
live tools act on jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.runtime._records import Source

if TYPE_CHECKING:
    from pipelines.runtime._runtime import Runtime
    from pipelines.runtime._spec import PipelineSpec, ProgressFn, RunSummary

__all__ = ["Job", "SpecWrapper", "SourceWrapper"]

SourceWrapper = Callable[[Source], Source]
SpecWrapper = Callable[["PipelineSpec"], "PipelineSpec"]


@dataclass
class Job:
    """``open_source`` and ``make_spec`` build a fresh source and pipeline for
    each run; ``source_wrappers`` and ``spec_wrappers`` sit around them (fault
    injection uses these, production code leaves them empty)."""

    pipeline: str
    dataset: str
    source_uri: str
    open_source: Callable[[], Source]
    make_spec: Callable[[Runtime], PipelineSpec]
    source_wrappers: list[SourceWrapper] = field(default_factory=list)
    spec_wrappers: list[SpecWrapper] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.pipeline}/{self.dataset}"

    def source(self) -> Source:
        src = self.open_source()
        for wrap in self.source_wrappers:
            src = wrap(src)
        return src

    def spec(self, rt: Runtime) -> PipelineSpec:
        spec = self.make_spec(rt)
        for wrap in self.spec_wrappers:
            spec = wrap(spec)
        return spec

    def run(self, rt: Runtime, *, progress: ProgressFn | None = None) -> RunSummary:
        from pipelines.runtime._runner import Runner

        src = self.source()
        try:
            return Runner(rt, self.spec(rt)).run(self.dataset, src, progress=progress)
        finally:
            src.close()

    def probe(self) -> str | None:
        """None when the source answers, else why it does not."""
        from app.errors import DataOpsError

        try:
            src = self.source()
        except DataOpsError as exc:
            return str(exc)
        try:
            probe = getattr(src, "probe", None)
            return probe() if callable(probe) else None
        except DataOpsError as exc:
            return str(exc)
        finally:
            src.close()
