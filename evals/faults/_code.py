"""Faults of the pipeline itself: a stage that runs out of memory at large
batches, and a stage with a bug."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from app.taxonomy import RootCause
from evals.faults._base import ExtraStageSpec, Fault, require
from pipelines.runtime import Item, Job, Runtime, Stage, StageContext

if TYPE_CHECKING:
    from pipelines.runtime import PipelineSpec

__all__ = ["MemoryBlowup", "StageException", "OOM_MESSAGE", "DEFECT_MESSAGE"]

OOM_MESSAGE = "Unable to allocate 3.1 GiB for an array with shape (4096, 3, 256, 256) and data type float32"
"""What the ``collate`` stage's MemoryError says (``error`` = ``"MemoryError: " + OOM_MESSAGE``)."""

DEFECT_MESSAGE = "'NoneType' object has no attribute 'getexif'"
"""What the ``exif_orient`` stage's AttributeError says (``error`` = ``"AttributeError: " + DEFECT_MESSAGE``)."""


class MemoryBlowup(Fault):
    name = "memory_blowup"
    description = (
        "A batch stage (collate) stacks the batch into one array and runs out of memory whenever the "
        "batch size is above what the worker can hold: every run fails until the batch size comes down."
    )
    expected_root_cause = RootCause.RESOURCE_EXHAUSTION
    expected_playbook = "reduce_batch_size"
    stage = "collate"

    def __init__(self, limit: int = 32, deploy_batch_size: int | None = None) -> None:
        """``limit``: the largest ``batch_size`` that fits (the default batch
        size is 64). ``deploy_batch_size``: also raise the job's batch size to
        this, as a careless deploy would (actor ``deploy-bot``)."""
        super().__init__()
        require(limit >= 1, self.name, f"limit must be >= 1, got {limit}")
        require(
            deploy_batch_size is None or deploy_batch_size > limit,
            self.name,
            f"deploy_batch_size must be above limit ({limit}), got {deploy_batch_size}",
        )
        self.limit = limit
        self.deploy_batch_size = deploy_batch_size

    def params(self) -> dict[str, object]:
        return {"limit": self.limit, "deploy_batch_size": self.deploy_batch_size}

    def _install(self, job: Job, rt: Runtime) -> None:
        before = self._current_config(job, rt).batch_size
        self.effects.update(limit=self.limit, batch_size_before=before, batch_size=before, raised=0)
        if self.deploy_batch_size is not None:
            version, cfg = rt.configs.set(
                job.pipeline,
                job.dataset,
                self._config_model(),
                {"batch_size": self.deploy_batch_size},
                actor="deploy-bot",
                reason="raise batch size for throughput",
            )
            self.effects.update(batch_size=cfg.batch_size, deploy_version=version)
        self._wrap_spec(job, self._wrap)

    def _wrap(self, spec: PipelineSpec) -> PipelineSpec:
        return ExtraStageSpec(spec, Stage(self.stage, self._collate, per_record=False), after="decode")

    def _collate(self, items: list[Item], ctx: StageContext) -> None:
        if self.active and ctx.config.batch_size > self.limit:
            self.effects["raised"] = int(self.effects.get("raised", 0)) + 1
            raise MemoryError(OOM_MESSAGE)

    def _undo(self) -> None:
        """Undo the deploy, if it made one and nobody changed the batch size since."""
        if self.deploy_batch_size is None:
            return
        job, rt = self.job, self.rt
        if self._current_config(job, rt).batch_size == self.deploy_batch_size:
            version, _ = rt.configs.set(
                job.pipeline,
                job.dataset,
                self._config_model(),
                {"batch_size": self.effects["batch_size_before"]},
                actor="chaos",
                reason=f"heal {self.name}: revert the batch size deploy",
            )
            self.effects["heal_version"] = version


class StageException(Fault):
    name = "stage_exception"
    description = (
        "A code defect: a per-record stage (exif_orient) raises an unexpected AttributeError on every "
        "image record, so the stage fails after its retries and the run fails."
    )
    expected_root_cause = RootCause.CODE_DEFECT
    expected_playbook = "escalate_only"
    stage = "exif_orient"

    def __init__(self, modality: str = "image") -> None:
        super().__init__()
        self._lock = threading.Lock()
        require(modality in ("image", "audio", "text"), self.name, f"unknown modality {modality!r}")
        self.modality = modality

    def params(self) -> dict[str, object]:
        return {"modality": self.modality}

    def _install(self, job: Job, rt: Runtime) -> None:
        self.effects.update(raised=0)
        self._wrap_spec(job, self._wrap)

    def _wrap(self, spec: PipelineSpec) -> PipelineSpec:
        return ExtraStageSpec(spec, Stage(self.stage, self._orient), after="decode")

    def _orient(self, item: Item, ctx: StageContext) -> None:
        modality = item.fields.get("modality") or item.record.modality
        if self.active and modality == self.modality:
            with self._lock:  # per-record stages run in the worker pool
                self.effects["raised"] = int(self.effects.get("raised", 0)) + 1
            raise AttributeError(DEFECT_MESSAGE)
