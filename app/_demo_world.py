"""The demo's world: the supervised jobs of each pipeline and the data that
keeps arriving for them.

- ingestion: a landing folder of small multimodal batches (the faults' target);
- annotation: scanned digits with their true labels in the metadata, ingested
  into their own dataset and labelled by a simulated pool of three annotators;
- enrichment: a stream of photos ingested into their own dataset and enriched.

The ingestion jobs that feed annotation and enrichment are plumbing: they
run, but the agents supervise only the three jobs above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipelines.runtime import Job, PipelineConfig, Runtime

__all__ = ["DemoWorld"]

DIGITS_PER_BATCH = 40
ANNOTATORS = ("ann-a", "ann-b", "ann-c")


def _config_models() -> dict[str, type[PipelineConfig]]:
    from agents import config_models

    return config_models()


@dataclass
class DemoWorld:
    rt: Runtime
    dataset: str
    root: Path
    jobs: dict[str, Job] = field(default_factory=dict)
    feeders: dict[str, Job] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)

    @property
    def landing(self) -> Path:
        """The ingestion job's landing folder (what the accounting covers)."""
        return self.root / "landing"

    @classmethod
    def create(cls, rt: Runtime, dataset: str, *, pipelines: set[str]) -> DemoWorld:
        from evals.faults import high_res_sample_schema
        from pipelines.ingestion import ingestion_job

        root = rt.settings.home / "demo" / dataset
        world = cls(rt, dataset, root)
        schema = root / "schema.yaml"
        schema.parent.mkdir(parents=True, exist_ok=True)
        schema.write_text(high_res_sample_schema(), encoding="utf-8")
        world.jobs["ingestion"] = ingestion_job(dataset, str(world.landing), schema_path=schema)
        if "annotation" in pipelines:
            from pipelines.annotation import SimulatedAnnotators, annotation_job

            digits = f"{dataset}-digits"
            world.feeders["annotation"] = ingestion_job(digits, str(root / "digits"))
            pool = SimulatedAnnotators(list(ANNOTATORS), 0.95, capacity_per_run=DIGITS_PER_BATCH, seed=7)
            world.jobs["annotation"] = annotation_job(
                f"{digits}-labels", digits, pool=pool, labels=[str(d) for d in range(10)]
            )
        if "enrichment" in pipelines:
            from pipelines.enrichment import enrichment_job

            photos = f"{dataset}-photos"
            world.feeders["enrichment"] = ingestion_job(photos, str(root / "photos"))
            world.jobs["enrichment"] = enrichment_job(photos)
        return world

    def configure(self) -> None:
        """Fast retries everywhere; while the annotation model is young, half
        of its auto-accepted labels also go to people (the audit)."""
        models = _config_models()
        for pipeline, job in self.jobs.items():
            changes: dict[str, float] = {"retry_backoff_s": 0.05}
            if pipeline == "annotation":
                changes["audit_rate"] = 0.5
            self.rt.configs.set(pipeline, job.dataset, models[pipeline], changes, actor="demo", reason="demo settings")

    def feed(self, pipeline: str) -> None:
        """New data arrives for ``pipeline`` (and is ingested, for annotation
        and enrichment, whose sources are ingested datasets)."""
        from pipelines.ingestion import make_sample_dataset

        n = self.batches.get(pipeline, 0)
        self.batches[pipeline] = n + 1
        if pipeline == "ingestion":
            make_sample_dataset(self.landing / f"batch-{n:02d}", n_images=16, n_audio=2, n_text=3, seed=100 + n)
            return
        if pipeline == "annotation":
            from pipelines.annotation import write_digits

            write_digits(self.root / "digits" / f"batch-{n:02d}", DIGITS_PER_BATCH, offset=n * DIGITS_PER_BATCH, seed=n)
        else:
            make_sample_dataset(self.root / "photos" / f"batch-{n:02d}", n_images=12, n_audio=0, n_text=0, seed=500 + n)
        self.feeders[pipeline].run(self.rt)
