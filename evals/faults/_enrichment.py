"""Faults of the enrichment pipeline: an embedding model version that raises,
an embedding stage that runs out of memory at large batches, and a spike of
one quality issue in what arrives.

They change the real job: the embedders of the pipeline spec it builds each
run (its ``embedders`` are public for this), or its stages (the embed stage
runs out of memory, the images reaching the quality stage are blurred).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from app.errors import InputError
from app.taxonomy import RootCause
from evals.faults._base import DelegatingSpec, Fault, require
from pipelines.runtime import Item, Job, PipelineConfig, Runtime, SourceRecord, Stage, StageContext

if TYPE_CHECKING:

    from pipelines.runtime import PipelineSpec

__all__ = ["FailingEmbeddingModel", "EmbeddingOOM", "IssueSpike", "BROKEN_MODEL_MESSAGE", "EMBED_OOM_MESSAGE"]

BROKEN_MODEL_MESSAGE = "weights of layer proj.0 hold NaN after the version's export; the forward pass aborted"
"""What the broken embedding model's RuntimeError says."""

EMBED_OOM_MESSAGE = "Unable to allocate 2.3 GiB for an array with shape (64, 3, 512, 512) and data type float32"
"""What the embed stage's MemoryError says."""


def _enrichment_config() -> type[PipelineConfig]:
    from pipelines.enrichment import EnrichmentConfig

    return EnrichmentConfig


def _plan_of(spec: PipelineSpec, fault: str) -> Any:
    plan = getattr(spec, "plan", None)
    if plan is None or not hasattr(spec, "embedders"):
        raise InputError(f"fault {fault!r} needs an enrichment job")
    return plan


class _BrokenEmbedder:
    def __init__(self, inner_name: str, fault: FailingEmbeddingModel) -> None:
        self.name = inner_name
        self.fault = fault

    def embed(self, items: Sequence[Any]) -> np.ndarray:
        self.fault.effects["raised"] = int(self.fault.effects.get("raised", 0)) + 1
        raise RuntimeError(f"{self.name}: {BROKEN_MODEL_MESSAGE}")


class FailingEmbeddingModel(Fault):
    name = "embedding_model_failure"
    description = (
        "One version of the embedding model is broken: its image model raises on every input, so records get "
        "no vectors (and no duplicate signature) until the job runs another version."
    )
    pipeline = "enrichment"
    expected_root_cause = RootCause.MODEL_DEGRADATION
    expected_playbook = "fallback_model"

    def __init__(self, version: int | None = None) -> None:
        """``version``: the broken embedding version (default: the one the
        job's config names when the fault is applied)."""
        super().__init__()
        require(version is None or version >= 1, self.name, f"version must be >= 1, got {version}")
        self.version = version

    def params(self) -> dict[str, object]:
        return {"version": self.version}

    def _config_model(self) -> type[PipelineConfig]:
        return _enrichment_config()

    def _install(self, job: Job, rt: Runtime) -> None:
        broken = self.version or int(self._current_config(job, rt).embedding_model_version)  # type: ignore[attr-defined]
        self.effects.update(version=broken, raised=0)
        self._wrap_spec(job, self._wrap)

    def _wrap(self, spec: PipelineSpec) -> PipelineSpec:
        plan = _plan_of(spec, self.name)
        if self.active and plan.embedding.version == self.effects["version"]:
            model = plan.embedding.model_for("image")
            if model is not None:
                spec.embedders.replace(model, _BrokenEmbedder(model, self))  # type: ignore[attr-defined]
                self.effects["model"] = model
        return spec


class _GuardedStageSpec(DelegatingSpec):
    """A pipeline spec whose stage ``stage`` first runs ``guard``."""

    def __init__(self, inner: PipelineSpec, stage: str, guard: Any) -> None:
        super().__init__(inner)
        self._stage = stage
        self._guard = guard

    def stages(self) -> list[Stage]:
        out = []
        for st in self.inner.stages():
            if st.name == self._stage:
                inner_fn = st.fn

                def guarded(items: Any, ctx: StageContext, _fn: Any = inner_fn) -> None:
                    self._guard(items, ctx)
                    _fn(items, ctx)

                st = Stage(st.name, guarded, per_record=st.per_record)
            out.append(st)
        return out


class EmbeddingOOM(Fault):
    name = "embedding_oom"
    description = (
        "The embed stage stacks a batch's inputs into one tensor and runs out of memory whenever the batch "
        "size is above what the worker holds: every run fails until the batch size comes down."
    )
    pipeline = "enrichment"
    expected_root_cause = RootCause.RESOURCE_EXHAUSTION
    expected_playbook = "reduce_batch_size"
    stage = "embed"

    def __init__(self, limit: int = 32) -> None:
        """``limit``: the largest ``batch_size`` that fits (the default is 64)."""
        super().__init__()
        require(limit >= 1, self.name, f"limit must be >= 1, got {limit}")
        self.limit = limit

    def params(self) -> dict[str, object]:
        return {"limit": self.limit}

    def _config_model(self) -> type[PipelineConfig]:
        return _enrichment_config()

    def _install(self, job: Job, rt: Runtime) -> None:
        self.effects.update(limit=self.limit, raised=0)
        self._wrap_spec(job, lambda spec: _GuardedStageSpec(spec, self.stage, self._check))  # type: ignore[arg-type, return-value]

    def _check(self, items: list[Item], ctx: StageContext) -> None:
        if self.active and ctx.config.batch_size > self.limit:
            self.effects["raised"] = int(self.effects.get("raised", 0)) + 1
            raise MemoryError(EMBED_OOM_MESSAGE)


class IssueSpike(Fault):
    name = "enrichment_issue_spike"
    description = (
        "The cameras lose focus: a share of the newly arriving images are heavily blurred, so the quality "
        "scorer flags one issue (blurry) on a large part of the run."
    )
    pipeline = "enrichment"
    expected_root_cause = RootCause.DATA_QUALITY
    expected_playbook = "pause_and_quarantine"

    def __init__(self, fraction: float = 0.8, radius: float = 6.0) -> None:
        """``fraction``: the share of image records blurred (chosen by sample
        id); ``radius``: of the Gaussian blur, in pixels."""
        super().__init__()
        require(0.0 < fraction <= 1.0, self.name, f"fraction must be in (0, 1], got {fraction}")
        require(radius > 0, self.name, f"radius must be > 0, got {radius}")
        self.fraction = fraction
        self.radius = radius

    def params(self) -> dict[str, object]:
        return {"fraction": self.fraction, "radius": self.radius}

    def _config_model(self) -> type[PipelineConfig]:
        return _enrichment_config()

    def _install(self, job: Job, rt: Runtime) -> None:
        self.effects.update(blurred=0)
        self._wrap_spec(job, lambda spec: _GuardedStageSpec(spec, "quality", self._blur_batch))  # type: ignore[arg-type, return-value]

    def _blur_batch(self, items: list[Item], ctx: StageContext) -> None:
        """What arrives is out of focus: the records' bytes as the stages see
        them (the run's ledger keeps each record's identity as it was read)."""
        if not self.active:
            return
        for it in items:
            if it.pending:
                it.record = self.blur(it.record)

    def _chosen(self, key: str) -> bool:
        draw = int(hashlib.sha256(f"blur\0{key}".encode()).hexdigest()[:12], 16) / float(16**12)
        return draw < self.fraction

    def blur(self, record: SourceRecord) -> SourceRecord:
        """``record`` out of focus, if it is an image chosen by the fraction."""
        from dataclasses import replace

        from PIL import Image, ImageFilter, UnidentifiedImageError

        if record.modality != "image" or not record.data or not self._chosen(record.source):
            return record
        try:
            with Image.open(io.BytesIO(record.data)) as img:
                out = img.convert("RGB").filter(ImageFilter.GaussianBlur(self.radius))
        except (UnidentifiedImageError, OSError):
            return record  # an unreadable record stays as it was: the pipeline judges it
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        self.effects["blurred"] = int(self.effects.get("blurred", 0)) + 1
        return replace(record, data=buf.getvalue())
