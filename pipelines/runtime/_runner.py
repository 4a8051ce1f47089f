"""Runs: a status machine over ordered stages and batches, with retries,
checkpoints (a ledger row per record, committed per batch) and resume."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from sqlalchemy import insert
from sqlmodel import Session, col, select

from app.errors import DataOpsError, RecordRejected, StageError
from pipelines.runtime._models import QuarantineRow, RecordRow, RunRow, utcnow
from pipelines.runtime._records import Source
from pipelines.runtime._runtime import Runtime
from pipelines.runtime._spec import PipelineSpec, ProgressFn, RunProgress, RunSummary, StageContext
from pipelines.runtime._stages import DUPLICATE, QUARANTINED, Item, Stage

T = TypeVar("T")

__all__ = ["PipelineSpec", "StageContext", "RunSummary", "RunProgress", "Runner"]


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# Runs this process is executing now; a run owned by this pid but not in
# here was interrupted (an exception escaped, or a test stopped it).
_ACTIVE: set[str] = set()


def _owner_alive(run: RunRow) -> bool:
    if not run.owner:
        return False
    host, _, pid_text = run.owner.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's run: leave it alone
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return pid != os.getpid() or run.id in _ACTIVE


class Runner:
    """Runs one pipeline over one source for one dataset."""

    def __init__(self, runtime: Runtime, spec: PipelineSpec) -> None:
        self.rt = runtime
        self.spec = spec

    # -- run bookkeeping ------------------------------------------------
    def _start(self, dataset: str, source_uri: str) -> tuple[RunRow, bool]:
        with Session(self.rt.engine, expire_on_commit=False) as s:
            stale = s.exec(
                select(RunRow).where(
                    RunRow.pipeline == self.spec.name,
                    RunRow.dataset == dataset,
                    RunRow.source == source_uri,
                    col(RunRow.status).in_(("pending", "running", "paused")),
                )
            ).all()
            resumable = [r for r in stale if r.status == "paused" or not _owner_alive(r)]
            run = resumable[-1] if resumable else None
            resumed = run is not None
            if run is None:
                stamp = utcnow().strftime("%Y%m%d-%H%M%S")
                run = RunRow(
                    id=f"run-{stamp}-{uuid.uuid4().hex[:6]}",
                    pipeline=self.spec.name,
                    dataset=dataset,
                    source=source_uri,
                )
            run.status, run.owner = "running", _owner()
            run.started_at = run.started_at or utcnow()
            run.heartbeat_at = utcnow()
            s.add(run)
            s.commit()
        self.rt.metrics.set_status(self.spec.name, dataset, "running")
        self.rt.events.emit(
            self.spec.name,
            "run_resumed" if resumed else "run_started",
            run_id=run.id,
            dataset=dataset,
            source=source_uri,
        )
        return run, resumed

    def _finish(self, run: RunRow, status: str, started: float, error: str | None = None) -> RunRow:
        with Session(self.rt.engine, expire_on_commit=False) as s:
            row = s.get(RunRow, run.id)
            assert row is not None
            row.status, row.error = status, error
            row.seconds = (row.seconds or 0.0) + (time.perf_counter() - started)
            if status in ("succeeded", "failed"):
                row.ended_at = utcnow()
            row.snapshot_id = run.snapshot_id
            s.add(row)
            s.commit()
            run = row
        self.rt.metrics.set_status(self.spec.name, run.dataset, status)
        return run

    # -- the loop -------------------------------------------------------
    def run(self, dataset: str, source: Source, *, progress: ProgressFn | None = None) -> RunSummary:
        rt, name = self.rt, self.spec.name
        run, _ = self._start(dataset, source.uri)
        started = time.perf_counter()
        version, cfg = rt.configs.current(name, dataset, self.spec.config_model)
        ctx = StageContext(rt, name, dataset, run.id, cfg)
        pool: ThreadPoolExecutor | None = None
        pool_size = 0
        _ACTIVE.add(run.id)
        try:
            self.spec.open(ctx)
            while True:
                if rt.control.is_paused(name, dataset):
                    rt.events.emit(name, "run_paused", run_id=run.id, dataset=dataset)
                    return RunSummary.of(self._finish(run, "paused", started))
                latest = rt.configs.latest_version(name, dataset)
                if latest != version:
                    version, ctx.config = rt.configs.current(name, dataset, self.spec.config_model)
                    rt.events.emit(name, "config_applied", run_id=run.id, dataset=dataset, version=version)
                cfg = ctx.config
                rt.metrics.batch_size.labels(name, dataset).set(cfg.batch_size)
                if cfg.workers != pool_size:
                    if pool is not None:
                        pool.shutdown(wait=True)
                    pool, pool_size = ThreadPoolExecutor(max_workers=cfg.workers), cfg.workers
                records = self._retrying("read", ctx, partial(source.read, cfg.batch_size))
                if not records:
                    break
                items = [Item.of(r) for r in records]
                fresh, seen, skipped = self._split_seen(dataset, run.id, items)
                if seen:
                    source.ack([i.record for i in seen])
                if fresh:
                    self._run_stages(fresh, ctx, pool)
                run = self._commit(run, fresh, skipped, ctx, version)
                self.spec.after_commit(fresh, ctx)
                source.ack([i.record for i in fresh])
                if progress:
                    progress(RunProgress(run.id, run.read, run.accepted, run.duplicates, run.quarantined, run.skipped))
            run.snapshot_id = self._retrying("publish", ctx, lambda: self.spec.finalize(ctx))
            run = self._finish(run, "succeeded", started)
            rt.configs.mark(name, dataset, version, good=True)
            self._check_snapshot(run)
            rt.events.emit(
                name,
                "run_succeeded",
                run_id=run.id,
                dataset=dataset,
                read=run.read,
                accepted=run.accepted,
                duplicates=run.duplicates,
                quarantined=run.quarantined,
                quarantine_reasons=dict(run.quarantine_reasons or {}),
                snapshot_id=run.snapshot_id,
            )
            return RunSummary.of(run)
        except StageError as exc:
            run = self._finish(run, "failed", started, error=str(exc))
            rt.events.emit(
                name, "run_failed", run_id=run.id, dataset=dataset, level="error", stage=exc.stage, message=str(exc)
            )
            return RunSummary.of(run)
        finally:
            _ACTIVE.discard(run.id)
            if pool is not None:
                pool.shutdown(wait=True)

    def _check_snapshot(self, run: RunRow) -> None:
        """Run the dataset's check suite and drift detection on what this run
        wrote; results become events (signals). A check that cannot run is
        reported, not fatal."""
        from pipelines.quality import check_after_write, drift_after_write

        try:
            check_after_write(self.rt, self.spec.name, run.dataset, snapshot_id=run.snapshot_id, run_id=run.id)
            drift_after_write(self.rt, self.spec.name, run.dataset, snapshot_id=run.snapshot_id, run_id=run.id)
        except DataOpsError as exc:
            self.rt.events.emit(
                self.spec.name, "checks_error", run_id=run.id, dataset=run.dataset, level="warning", message=str(exc)
            )

    def _split_seen(self, dataset: str, run_id: str, items: list[Item]) -> tuple[list[Item], list[Item], int]:
        """Records the ledger already has are not processed again; those an
        earlier run finished count as skipped, this run's own (a resume) not."""
        keys = [i.key for i in items]
        with Session(self.rt.engine) as s:
            known = dict(
                s.exec(
                    select(RecordRow.record_key, RecordRow.run_id).where(
                        RecordRow.pipeline == self.spec.name,
                        RecordRow.dataset == dataset,
                        col(RecordRow.record_key).in_(keys),
                    )
                ).all()
            )
        fresh: list[Item] = []
        seen: list[Item] = []
        in_batch: set[str] = set()
        for item in items:
            (seen if item.key in known or item.key in in_batch else fresh).append(item)
            in_batch.add(item.key)
        skipped = sum(1 for i in seen if known.get(i.key, run_id) != run_id)
        return fresh, seen, skipped

    def _run_stages(self, items: list[Item], ctx: StageContext, pool: ThreadPoolExecutor | None) -> None:
        for stage in self.spec.stages():
            self._retrying(stage.name, ctx, partial(self._run_stage, stage, items, ctx, pool))

    def _retrying(self, stage: str, ctx: StageContext, fn: Callable[[], T]) -> T:
        """Call ``fn`` with the config's retries and exponential backoff; after
        the last attempt the stage fails the run."""
        cfg = ctx.config
        attempt = 0
        while True:
            t0 = time.perf_counter()
            try:
                return fn()
            except Exception as exc:
                self.rt.metrics.stage_failures.labels(ctx.pipeline, stage).inc()
                error = f"{type(exc).__name__}: {exc}"
                last = attempt >= cfg.max_stage_retries
                delay = cfg.retry_backoff_s * (2**attempt)
                self.rt.events.emit(
                    ctx.pipeline,
                    "stage_failed" if last else "stage_retry",
                    run_id=ctx.run_id,
                    dataset=ctx.dataset,
                    level="error" if last else "warning",
                    stage=stage,
                    message=error,
                    error=error,
                    error_type=type(exc).__name__,
                    attempt=attempt + 1,
                    batch_size=cfg.batch_size,
                    delay_s=0.0 if last else delay,
                )
                if last:
                    raise StageError(stage, error) from exc
                time.sleep(delay)
                attempt += 1
            finally:
                self.rt.metrics.stage_latency.labels(ctx.pipeline, stage).observe(time.perf_counter() - t0)

    @staticmethod
    def _run_stage(stage: Stage, items: list[Item], ctx: StageContext, pool: ThreadPoolExecutor | None) -> None:
        pending = [i for i in items if i.pending]
        if not pending:
            return
        if not stage.per_record:
            stage.fn(pending, ctx)
            return

        def one(item: Item) -> None:
            try:
                stage.fn(item, ctx)
            except RecordRejected as rej:
                item.quarantine(rej.reason, rej.detail)

        if pool is not None and len(pending) > 1 and ctx.config.workers > 1:
            list(pool.map(one, pending))
        else:
            for item in pending:
                one(item)

    def _commit(self, run: RunRow, items: list[Item], skipped: int, ctx: StageContext, version: int) -> RunRow:
        """Write one batch durably, in one transaction: ledger, quarantine,
        the pipeline's own rows and the run's counters."""
        rt = self.rt
        for item in items:
            if item.outcome is None:  # a stage forgot it; never lose a record
                item.quarantine("unprocessed", "no stage gave this record an outcome")
        q_uris = {i.key: rt.objects.put(i.record.data) for i in items if i.outcome == QUARANTINED}
        counts = Counter(i.outcome for i in items)
        reasons = Counter(i.reason for i in items if i.outcome == QUARANTINED)
        now = utcnow()
        ledger = [
            {
                "run_id": run.id,
                "pipeline": ctx.pipeline,
                "dataset": ctx.dataset,
                "record_key": i.key,
                "source": i.record.source,
                "sha256": i.sha256,
                "outcome": i.outcome or QUARANTINED,
                "sample_id": i.sample_id,
                "reason": i.reason,
                "detail": i.detail,
                "duplicate_of": i.duplicate_of,
                "at": now,
            }
            for i in items
        ]
        quarantine = [
            {
                "run_id": run.id,
                "pipeline": ctx.pipeline,
                "dataset": ctx.dataset,
                "source": i.record.source,
                "reason": i.reason or "unknown",
                "detail": i.detail,
                "uri": q_uris[i.key],
                "sha256": i.sha256,
                "size_bytes": len(i.record.data),
                "at": now,
            }
            for i in items
            if i.outcome == QUARANTINED
        ]
        with Session(rt.engine, expire_on_commit=False) as s:
            row = s.get(RunRow, run.id, with_for_update=rt.settings.is_postgres)
            assert row is not None
            # Core bulk inserts: the ORM costs more per row than decoding an image.
            if ledger:
                s.execute(insert(RecordRow), ledger)
            if quarantine:
                s.execute(insert(QuarantineRow), quarantine)
            self.spec.commit_rows(items, ctx, s)
            row.read += len(items)
            row.accepted += counts.get("accepted", 0)
            row.duplicates += counts.get(DUPLICATE, 0)
            row.quarantined += counts.get(QUARANTINED, 0)
            row.skipped += skipped
            merged = Counter(row.quarantine_reasons or {})
            merged.update({k: v for k, v in reasons.items() if k})
            row.quarantine_reasons = dict(merged)
            row.config_version = version
            row.heartbeat_at = utcnow()
            s.add(row)
            s.commit()
        m = rt.metrics
        m.records_in.labels(ctx.pipeline, ctx.dataset).inc(len(items))
        m.records_accepted.labels(ctx.pipeline, ctx.dataset).inc(counts.get("accepted", 0))
        for reason, n in reasons.items():
            m.records_quarantined.labels(ctx.pipeline, ctx.dataset, reason or "unknown").inc(n)
        for kind, n in Counter(i.duplicate_kind for i in items if i.outcome == DUPLICATE).items():
            m.records_duplicate.labels(ctx.pipeline, ctx.dataset, kind or "exact").inc(n)
        rt.events.emit(
            ctx.pipeline,
            "batch_committed",
            run_id=run.id,
            dataset=ctx.dataset,
            level="debug",
            records=len(items),
            accepted=counts.get("accepted", 0),
            duplicates=counts.get(DUPLICATE, 0),
            quarantined=counts.get(QUARANTINED, 0),
            skipped=skipped,
        )
        return row
