"""From the config's job entries to runnable jobs (and the faults a drill
injects into them)."""

from __future__ import annotations

from typing import Any

from app.daemon._config import DaemonConfig, JobSpec
from app.errors import ConfigError, DataOpsError
from pipelines.runtime import Job, Runtime

__all__ = ["build_jobs", "describe_start_failure"]


def build_job(spec: JobSpec) -> Job:
    if spec.pipeline == "ingestion":
        from pipelines.ingestion import ingestion_job

        return ingestion_job(spec.dataset, spec.source, schema_path=spec.schema_path)
    if spec.pipeline == "annotation":
        from pipelines.annotation import annotation_job

        return annotation_job(spec.dataset, spec.source)
    from pipelines.enrichment import enrichment_job

    return enrichment_job(spec.dataset)


def build_jobs(rt: Runtime, config: DaemonConfig) -> dict[str, Job]:
    """The config's jobs by ``pipeline/dataset``, with their drill faults
    applied. With no jobs configured: the jobs registered in the metadata DB
    (watched, never scheduled)."""
    if not config.jobs:
        from agents import registered_jobs

        return {j.key: j for j in registered_jobs(rt)}
    out: dict[str, Job] = {}
    for spec in config.jobs:
        job = build_job(spec)
        if spec.faults:
            from evals.faults import make_fault

            for f in spec.faults:
                try:
                    make_fault(f.name, **f.params).apply(job, rt)
                except DataOpsError as exc:
                    raise ConfigError(f"job {spec.key}: fault {f.name!r}: {exc}") from None
        out[spec.key] = job
    return out


def describe_start_failure(job: Job, exc: DataOpsError) -> dict[str, Any]:
    """The run event fields for a run that could not even start: when the
    source does not answer that is what the error says (an upstream outage),
    else the error as it was raised."""
    problem = job.probe()
    if problem:
        error = f"source unavailable: {problem}"
    else:
        error = f"{type(exc).__name__}: {exc}"
    return {"level": "error", "stage": "source", "message": f"run could not start: {exc}", "error": error}
