"""The live backend: the tools' calls against the real pipelines and stores."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import update
from sqlmodel import Session, col, select

from app.errors import DataOpsError, NotFoundError
from pipelines.runtime import (
    Job,
    PipelineConfig,
    QuarantineRow,
    RecordRow,
    RunRow,
    RunSummary,
    Runtime,
    SampleRow,
    bounds_of,
    utcnow,
)
from tools._base import ToolCall, ToolResult
from tools._live_observe import event_signals, events_after, latest_run, table_checks
from tools._live_pipelines import PipelineActions
from tools._prometheus import PrometheusMetrics
from tools._signals import Signal

__all__ = ["LiveBackend"]

_log = structlog.get_logger("dataops.notify")
_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


class LiveBackend(PipelineActions):
    """Answers every tool against the real world. ``jobs`` are the supervised
    jobs by ``pipeline/dataset``; ``config_models`` give each pipeline's
    tunables and bounds. Annotation and enrichment actions come from
    :class:`tools._live_pipelines.PipelineActions`."""

    def __init__(
        self,
        rt: Runtime,
        jobs: Mapping[str, Job],
        config_models: Mapping[str, type[PipelineConfig]],
        *,
        memory: Any = None,
        start: datetime | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.rt = rt
        self.jobs = dict(jobs)
        self.config_models = dict(config_models)
        self.memory = memory
        self.start = start or clock()
        self.clock = clock
        self._check_cache: dict[Any, list[dict[str, Any]]] = {}
        self._prometheus: PrometheusMetrics | None = None  # made on first use when prometheus_url is set

    def now_t(self) -> float:
        return (self.clock() - self.start).total_seconds()

    def handle(self, call: ToolCall) -> ToolResult:
        fn = getattr(self, f"_{call.tool}", None)
        if fn is None:
            return ToolResult.no_data(call.tool, f"the live backend has no {call.tool!r}")
        try:
            result: ToolResult = fn(**call.args)
        except DataOpsError as exc:
            return ToolResult.fail(call.tool, str(exc))
        return result

    # -- helpers ----------------------------------------------------------
    def _job(self, pipeline: str, dataset: str | None) -> Job:
        if dataset:
            job = self.jobs.get(f"{pipeline}/{dataset}")
        else:
            matches = [j for j in self.jobs.values() if j.pipeline == pipeline]
            job = matches[0] if len(matches) == 1 else None
        if job is None:
            raise NotFoundError(f"no supervised {pipeline} job for dataset {dataset!r}")
        return job

    def _model(self, pipeline: str) -> type[PipelineConfig]:
        return self.config_models.get(pipeline, PipelineConfig)

    # -- observe ----------------------------------------------------------
    def _get_signals(
        self,
        pipeline: str,
        dataset: str | None = None,
        since_t: float = 0.0,
        kinds: list[str] | None = None,
        limit: int = 200,
        after_event_id: int | None = None,
        seen_event_ids: list[int] | None = None,
    ) -> ToolResult:
        checks: list[Signal] = []
        for job in self.jobs.values():
            # The table checks hold an ingested table to the ingestion ledger.
            if job.pipeline == pipeline == "ingestion" and (not dataset or job.dataset == dataset):
                for c in table_checks(self.rt, job.dataset, self._check_cache):
                    if c["status"] == "fail":
                        checks.append(Signal(kind="check", t=self.now_t(), pipeline=pipeline, **c))
        if after_event_id is not None:
            # By id: nothing committed out of time order is skipped (see events_after).
            signals = events_after(
                self.rt, self.start, pipeline, dataset, after_id=after_event_id, since_t=since_t,
                seen=set(seen_event_ids or ()), limit=max(1, limit - len(checks)),
            )
        else:
            since = self.start.timestamp() + since_t
            rows = self.rt.events.list(pipeline=pipeline, since=datetime.fromtimestamp(since, UTC), limit=2000)
            signals = [
                s for s in event_signals(rows, self.start) if s.t >= since_t and (not dataset or s.dataset in (None, dataset, "*"))
            ]
        signals += checks
        if kinds:
            signals = [s for s in signals if s.kind in kinds]
        if after_event_id is None:
            signals = signals[-limit:]  # by id the limit was kept in whole events
        if not signals:
            return ToolResult.no_data("get_signals", "no signals in that window")
        return ToolResult.ok("get_signals", [s.model_dump(mode="json", exclude_none=True) for s in signals])

    def _run_status(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        run = latest_run(self.rt, pipeline, dataset)
        if run is None:
            return ToolResult.no_data("run_status", "no runs yet")
        return ToolResult.ok("run_status", RunSummary.of(run).model_dump(mode="json"))

    def _get_metrics(self, name: str, labels: dict[str, str] | None = None) -> ToolResult:
        if self.rt.settings.prometheus_url:
            if self._prometheus is None:
                self._prometheus = PrometheusMetrics(self.rt.settings.prometheus_url)
            return self._prometheus.tool_result(name, labels)
        wanted = {name, name.removesuffix("_total"), f"dataops_{name}", f"dataops_{name.removesuffix('_total')}"}
        out = []
        for metric in self.rt.metrics.registry.collect():
            for sample in metric.samples:
                if (sample.name in wanted or metric.name in wanted) and all(
                    sample.labels.get(k) == v for k, v in (labels or {}).items()
                ):
                    out.append({"name": sample.name, "labels": dict(sample.labels), "value": sample.value})
        return ToolResult.ok("get_metrics", out) if out else ToolResult.no_data("get_metrics", f"no metric {name!r}")

    def _get_checks(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        checks = table_checks(self.rt, job.dataset, self._check_cache) if job.pipeline == "ingestion" else []
        return ToolResult.ok("get_checks", checks) if checks else ToolResult.no_data("get_checks", "no checks yet")

    def _get_logs(self, pipeline: str, dataset: str | None = None, level: str = "warning", limit: int = 50) -> ToolResult:
        rows = self.rt.events.list(pipeline=pipeline, limit=2000)
        lines = [
            {"ts": r.ts.isoformat(), "level": r.level, "message": r.message or r.type, "stage": r.stage}
            for r in rows
            if _LEVELS.get(r.level, 1) >= _LEVELS[level] and (not dataset or r.dataset in (None, dataset))
        ][-limit:]
        return ToolResult.ok("get_logs", lines) if lines else ToolResult.no_data("get_logs", "no log lines")

    def _get_config(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        model = self._model(pipeline)
        version, cfg = self.rt.configs.current(pipeline, job.dataset, model)
        return ToolResult.ok(
            "get_config",
            {"version": version, "values": cfg.model_dump(), "bounds": {k: list(v) for k, v in bounds_of(model).items()}},
        )

    def _config_history(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        rows = self.rt.configs.history(pipeline, job.dataset)
        return ToolResult.ok(
            "config_history",
            [
                {"version": r.version, "changed": r.changed, "actor": r.actor, "reason": r.reason, "good": r.good, "at": r.at.isoformat()}
                for r in rows
            ],
        )

    def _recall_incidents(self, query: str, k: int = 5) -> ToolResult:
        if self.memory is None:
            return ToolResult.no_data("recall_incidents", "incident memory is off")
        matches = self.memory.similar(query, k=k, before=self.clock())
        return ToolResult.ok(
            "recall_incidents",
            [
                {
                    "id": m.incident.id,
                    "title": m.incident.title,
                    "root_cause": str(m.incident.root_cause),
                    "playbook": m.incident.playbook,
                    "outcome": str(m.incident.outcome),
                    "similarity": round(m.similarity, 3),
                }
                for m in matches
            ],
        )

    # -- act --------------------------------------------------------------
    def _retry_stage(self, pipeline: str, dataset: str | None = None, stage: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        summary = job.run(self.rt)
        data = summary.model_dump(mode="json")
        if summary.status == "succeeded":
            return ToolResult.ok("retry_stage", data)
        return ToolResult.fail("retry_stage", summary.error or f"run ended {summary.status}", data)

    def _set_config(self, pipeline: str, key: str, value: Any, dataset: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        previous = self.rt.configs.latest_version(pipeline, job.dataset)
        version, cfg = self.rt.configs.set(
            pipeline, job.dataset, self._model(pipeline), {key: value}, actor="agent", reason=f"set {key}"
        )
        return ToolResult.ok("set_config", {"version": version, "previous_version": previous, key: getattr(cfg, key)})

    def _scale_workers(self, pipeline: str, workers: int, dataset: str | None = None) -> ToolResult:
        return self._set_config(pipeline, "workers", workers, dataset)

    def _restore_config(self, pipeline: str, dataset: str | None = None, version: int | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        previous = self.rt.configs.latest_version(pipeline, job.dataset)
        if version is None:
            # The newest version is the suspect (a run may even have "succeeded"
            # on it): go back to the last good one before it.
            history = [r for r in self.rt.configs.history(pipeline, job.dataset) if r.version < previous]
            good = [r for r in history if r.good] or history
            if not good:
                return ToolResult.fail("restore_config", "no earlier config version to restore")
            version = good[-1].version
        new, _ = self.rt.configs.restore(
            pipeline, job.dataset, self._model(pipeline), version, actor="agent", reason=f"restore version {version}"
        )
        return ToolResult.ok("restore_config", {"version": new, "restored_from": version, "previous_version": previous})

    def _pause_pipeline(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        self.rt.control.pause(pipeline, job.dataset, by="agent", reason="remediation")
        return ToolResult.ok("pause_pipeline", {"paused": True, "dataset": job.dataset})

    def _resume_pipeline(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        self.rt.control.resume(pipeline, job.dataset, by="agent", reason="remediation")
        return ToolResult.ok("resume_pipeline", {"paused": False, "dataset": job.dataset})

    def _probe_source(self, pipeline: str, dataset: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        problem = job.probe()
        if problem:
            return ToolResult.fail("probe_source", problem)
        return ToolResult.ok("probe_source", {"reachable": True, "source": job.source_uri})

    def _notify(self, pipeline: str, message: str, severity: str = "info") -> ToolResult:
        self.rt.events.emit(pipeline, "notification", level="info", message=message, severity=severity)
        url = self.rt.settings.notify_webhook_url
        if url:
            try:
                httpx.post(url, json={"pipeline": pipeline, "severity": severity, "text": message}, timeout=10)
            except httpx.HTTPError as exc:
                return ToolResult.fail("notify", f"webhook {url} failed: {exc.__class__.__name__}: {exc}")
        _log.info("notify", pipeline=pipeline, severity=severity, message=message)
        return ToolResult.ok("notify", {"delivered": bool(url), "logged": True})

    def _rollback_table(self, pipeline: str, dataset: str | None = None, snapshot_id: int | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        if snapshot_id is None:
            snapshot_id = self._last_good_snapshot(job.dataset)
            if snapshot_id is None:
                return ToolResult.fail("rollback_table", "no earlier snapshot written by a successful run")
        previous = self.rt.offline.rollback(job.dataset, snapshot_id)
        self._check_cache.clear()
        return ToolResult.ok("rollback_table", {"snapshot_id": snapshot_id, "previous_snapshot_id": previous})

    def _last_good_snapshot(self, dataset: str) -> int | None:
        with Session(self.rt.engine) as s:
            ours = set(
                s.exec(select(RunRow.id).where(RunRow.dataset == dataset, RunRow.status == "succeeded"))
            )
        current = self.rt.offline.current_snapshot_id(dataset)
        good = [
            snap.snapshot_id
            for snap in self.rt.offline.snapshots(dataset)
            if snap.run_id in ours and snap.snapshot_id != current
        ]
        return good[-1] if good else None

    def _quarantine_batch(self, pipeline: str, dataset: str | None = None, run_id: str | None = None) -> ToolResult:
        job = self._job(pipeline, dataset)
        run = self._run(job, run_id)
        if job.pipeline != "ingestion":
            # Their own records are not samples, and job.dataset's table is the raw one: leave both alone.
            return self._hold_back_batch(job, run)
        moved = self._move_to_quarantine(run)
        rolled_back = None
        if run.snapshot_id is not None and run.snapshot_id == self.rt.offline.current_snapshot_id(job.dataset):
            parent = next((s.parent_id for s in self.rt.offline.snapshots(job.dataset) if s.snapshot_id == run.snapshot_id), None)
            if parent is not None:
                self.rt.offline.rollback(job.dataset, parent)
                rolled_back = parent
        self._check_cache.clear()
        return ToolResult.ok("quarantine_batch", {"run_id": run.id, "quarantined": moved, "table_rolled_back_to": rolled_back})

    def _run(self, job: Job, run_id: str | None) -> RunRow:
        if run_id:
            with Session(self.rt.engine) as s:
                run = s.get(RunRow, run_id)
        else:
            run = latest_run(self.rt, job.pipeline, job.dataset)
        if run is None:
            raise NotFoundError(f"no run {run_id or '(latest)'} for {job.key}")
        return run

    def _move_to_quarantine(self, run: RunRow) -> int:
        """The run's accepted samples become quarantined records (bytes kept),
        so its accounting still adds up and nothing downstream reads them."""
        reason = "quarantined_by_agent"
        with Session(self.rt.engine) as s:
            samples = list(s.exec(select(SampleRow).where(SampleRow.run_id == run.id)))
            for smp in samples:
                s.add(
                    QuarantineRow(
                        run_id=run.id,
                        pipeline=run.pipeline,
                        dataset=run.dataset,
                        source=smp.source,
                        reason=reason,
                        detail="batch quarantined during an incident",
                        uri=smp.uri,
                        sha256=smp.sha256,
                        size_bytes=smp.size_bytes,
                    )
                )
                s.delete(smp)
            ids = [smp.sample_id for smp in samples]
            if ids:
                s.execute(
                    update(RecordRow)
                    .where(col(RecordRow.run_id) == run.id, col(RecordRow.sample_id).in_(ids))
                    .values(outcome="quarantined", reason=reason, sample_id=None)
                )
            row = s.get(RunRow, run.id)
            assert row is not None
            row.accepted -= len(ids)
            row.quarantined += len(ids)
            reasons = dict(row.quarantine_reasons or {})
            reasons[reason] = reasons.get(reason, 0) + len(ids)
            row.quarantine_reasons = reasons
            s.add(row)
            s.commit()
        for sid in ids:
            self.rt.online.delete(f"{run.dataset}/{sid}")
        return len(ids)
