"""The live backend's annotation and enrichment actions: annotators through
the annotation queue, model versions through the model registry and the
config store, re-enrichment through the enrichment service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, col, select

from pipelines.runtime import Job, PipelineConfig, RunRow, Runtime
from tools._base import ToolResult
from tools._catalog_ml import MODEL_VERSION_KEYS

__all__ = ["PipelineActions"]


class PipelineActions:
    """Mixed into :class:`tools._live.LiveBackend`, which provides ``rt``,
    ``_job`` and ``_model``."""

    rt: Runtime
    config_models: Mapping[str, type[PipelineConfig]]

    def _job(self, pipeline: str, dataset: str | None) -> Job:
        raise NotImplementedError

    def _model(self, pipeline: str) -> type[PipelineConfig]:
        raise NotImplementedError

    # -- annotation ---------------------------------------------------------
    def _annotation_queue(self, pipeline: str, dataset: str | None, annotator: str) -> Any:
        from pipelines.annotation import AnnotationQueue

        job = self._job(pipeline, dataset)
        if job.pipeline != "annotation":
            return None
        queue = AnnotationQueue(self.rt.engine, job.dataset)
        if annotator not in {a.name for a in queue.annotators()}:
            return None
        return queue

    def _quarantine_annotator(
        self, pipeline: str, annotator: str, dataset: str | None = None, reason: str = ""
    ) -> ToolResult:
        queue = self._annotation_queue(pipeline, dataset, annotator)
        if queue is None:
            return ToolResult.fail(
                "quarantine_annotator", f"{annotator!r} has answered no task of a supervised {pipeline} dataset"
            )
        done = queue.quarantine_annotator(annotator, reason or "quarantined during an incident")
        self.rt.events.emit(
            pipeline,
            "annotator_quarantined",
            dataset=queue.dataset,
            message=f"annotator {annotator} quarantined: {done.reason}",
            annotator=annotator,
            answers=done.answers,
            requeued=len(done.requeued),
            actor="agent",
        )
        return ToolResult.ok(
            "quarantine_annotator",
            {"annotator": annotator, "answers_set_aside": done.answers, "requeued": len(done.requeued),
             "already": done.already},
        )

    def _release_annotator(self, pipeline: str, annotator: str, dataset: str | None = None) -> ToolResult:
        queue = self._annotation_queue(pipeline, dataset, annotator)
        if queue is None:
            return ToolResult.fail(
                "release_annotator", f"{annotator!r} has answered no task of a supervised {pipeline} dataset"
            )
        queue.release_annotator(annotator)
        self.rt.events.emit(
            pipeline, "annotator_released", dataset=queue.dataset, annotator=annotator, actor="agent",
            message=f"annotator {annotator} released",
        )
        return ToolResult.ok("release_annotator", {"annotator": annotator})

    # -- pause_and_quarantine ----------------------------------------------
    def _hold_back_batch(self, job: Job, run: RunRow) -> ToolResult:
        """quarantine_batch for annotation and enrichment: their records are
        not ingested samples. An enrichment run's records with a blocking
        issue already skipped dedup, labels and embeddings; the pause keeps
        more from arriving. Says how many of the run's records are held back."""
        held = 0
        if job.pipeline == "enrichment":
            from pipelines.enrichment import EnrichmentSampleRow

            with Session(self.rt.engine) as s:
                held = len(
                    s.exec(
                        select(EnrichmentSampleRow.sample_id).where(
                            EnrichmentSampleRow.run_id == run.id, col(EnrichmentSampleRow.blocked).is_(True)
                        )
                    ).all()
                )
        return ToolResult.ok(
            "quarantine_batch",
            {"run_id": run.id, "quarantined": 0, "held_back": held, "table_rolled_back_to": None},
        )

    # -- enrichment ---------------------------------------------------------
    def _fallback_model(self, pipeline: str, kind: str, dataset: str | None = None) -> ToolResult:
        from pipelines.enrichment import ModelRegistry

        job = self._job(pipeline, dataset)
        key = MODEL_VERSION_KEYS[kind]
        model = self._model(pipeline)
        _, cfg = self.rt.configs.current(pipeline, job.dataset, model)
        current = getattr(cfg, key, None)
        if not isinstance(current, int):
            return ToolResult.fail("fallback_model", f"the {pipeline} config has no {key}")
        previous = ModelRegistry(self.rt.settings).previous(kind, current)
        if previous is None:
            return ToolResult.fail("fallback_model", f"the model registry has no {kind} version before {current}")
        version, _ = self.rt.configs.set(
            pipeline, job.dataset, model, {key: previous}, actor="agent",
            reason=f"fall back from {kind} model version {current} to {previous}",
        )
        return ToolResult.ok(
            "fallback_model", {"kind": kind, "version": previous, "previous_version": current, "config_version": version}
        )

    def _enrichment_dataset(self, pipeline: str, dataset: str | None) -> str | None:
        job = self._job(pipeline, dataset)
        return job.dataset if job.pipeline == "enrichment" else None

    def _reenrich_scope(
        self, pipeline: str, dataset: str | None = None, snapshot_id: int | None = None, version: str | None = None
    ) -> ToolResult:
        from pipelines.enrichment import reenrich_estimate

        name = self._enrichment_dataset(pipeline, dataset)
        if name is None:
            return ToolResult.no_data("reenrich_scope", f"{pipeline} is not an enrichment pipeline")
        samples, over = reenrich_estimate(self.rt, name, snapshot_id)
        return ToolResult.ok(
            "reenrich_scope",
            {"samples": samples, "over_approval_limit": over, "snapshot_id": snapshot_id, "version": version},
        )

    def _reenrich(
        self, pipeline: str, dataset: str | None = None, snapshot_id: int | None = None, version: str | None = None
    ) -> ToolResult:
        from pipelines.enrichment import reenrich

        name = self._enrichment_dataset(pipeline, dataset)
        if name is None:
            return ToolResult.fail("reenrich", f"{pipeline} is not an enrichment pipeline")
        result = reenrich(self.rt, name, version=version, snapshot_id=snapshot_id)
        data = {"version": result.version, "raw_snapshot_id": result.raw_snapshot_id, "processed": result.processed,
                "embedded": result.embedded, "status": result.status}
        if result.status != "succeeded":
            return ToolResult.fail("reenrich", result.error or f"re-enrichment ended {result.status}", data)
        return ToolResult.ok("reenrich", data)
