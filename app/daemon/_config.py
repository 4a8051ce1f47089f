"""The daemon's configuration file: which jobs it runs, on what schedule, and
how often it watches and tidies up.

::

    monitor_interval_s: 30
    jobs:
      - pipeline: ingestion
        dataset: products
        source: s3://raw-uploads/products/
        schema: /etc/dataops/schemas/products.yaml
        schedule: {cron: "*/15 * * * *"}     # or {interval_s: 900}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agents import AgentSettings
from app.errors import ConfigError
from app.parsing import load_yaml_mapping, validation_summary

__all__ = ["DaemonConfig", "FaultSpec", "JobSpec", "Schedule", "load_daemon_config"]

PipelineName = Literal["ingestion", "annotation", "enrichment"]


class Schedule(BaseModel):
    """Exactly one of a crontab line (five fields, UTC) or an interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cron: str | None = None
    interval_s: float | None = Field(default=None, gt=0)
    jitter_s: int | None = Field(default=None, ge=0, description="Random delay added to each run.")

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("give exactly one of cron and interval_s")
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"invalid cron {self.cron!r}: {exc}") from None
        return self

    def trigger(self) -> Any:
        """The APScheduler trigger for this schedule."""
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            return CronTrigger.from_crontab(self.cron, timezone="UTC")
        from apscheduler.triggers.interval import IntervalTrigger

        assert self.interval_s is not None
        return IntervalTrigger(seconds=self.interval_s, jitter=self.jitter_s, timezone="UTC")


class FaultSpec(BaseModel):
    """A fault from ``dataops chaos list`` injected into a job: for game days
    and drills on a staging daemon, never in production."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: PipelineName = "ingestion"
    dataset: str = Field(min_length=1, pattern=r"^[^/\s]+$")
    source: str = Field(
        min_length=1, description="ingestion: a folder, URL or stream; annotation: the source dataset; enrichment: unused."
    )
    schema_path: Path | None = Field(default=None, alias="schema", description="ingestion: the dataset schema YAML.")
    schedule: Schedule | None = Field(default=None, description="None: watched and remediated, never run on a timer.")
    run_at_start: bool = Field(default=False, description="Also run once as soon as the daemon starts.")
    faults: list[FaultSpec] = Field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.pipeline}/{self.dataset}"


class DaemonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: list[JobSpec] = Field(default_factory=list)
    monitor_interval_s: float = Field(default=30.0, gt=0, description="Seconds between monitor cycles of each job.")
    housekeeping_interval_s: float = Field(default=300.0, gt=0)
    checks_interval_s: float = Field(default=3600.0, gt=0, description="Seconds between runs of each dataset's check suite.")
    event_retention_days: float = Field(default=30.0, gt=0, description="Run events older than this are pruned.")
    workers: int = Field(default=4, ge=1, le=64, description="Scheduler threads (runs, cycles, housekeeping).")
    misfire_grace_s: int = Field(default=300, ge=1, description="A run missed by up to this long still runs (once).")
    shutdown_timeout_s: float = Field(
        default=25.0, gt=0, le=600, description="SIGTERM: how long in-flight work may take to finish before exit."
    )
    incident_memory: bool = Field(default=True, description="Use the Chroma incident memory (loads MiniLM).")
    agents: AgentSettings = Field(default_factory=AgentSettings, description="The monitor's and the gate's thresholds.")

    @field_validator("jobs")
    @classmethod
    def _unique(cls, jobs: list[JobSpec]) -> list[JobSpec]:
        seen: set[str] = set()
        for job in jobs:
            if job.key in seen:
                raise ValueError(f"job {job.key} is listed twice")
            seen.add(job.key)
        return jobs

    def job(self, key: str) -> JobSpec | None:
        return next((j for j in self.jobs if j.key == key), None)


def load_daemon_config(path: Path | None) -> DaemonConfig:
    """Read ``path``; ``None`` gives the defaults with no jobs (the daemon then
    watches the jobs registered in the metadata DB)."""
    if path is None:
        return DaemonConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read daemon config {path}: {exc.strerror or exc}") from None
    data = load_yaml_mapping(text, origin=str(path), what="daemon config", error=ConfigError)
    try:
        cfg = DaemonConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_summary(exc)}") from None
    base = path.parent
    jobs = [
        j.model_copy(update={"schema_path": base / j.schema_path})
        if j.schema_path is not None and not j.schema_path.is_absolute()
        else j
        for j in cfg.jobs
    ]
    return cfg.model_copy(update={"jobs": jobs})
