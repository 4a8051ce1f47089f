"""APScheduler in the background: the configured schedules in a job store in
the metadata DB (they survive restarts), one-off work (a prompt cycle after
an alert, a human's answer) in memory."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from app.daemon import _tasks
from app.daemon._core import Daemon

__all__ = ["DaemonScheduler", "JOBS_TABLE"]

_log = structlog.get_logger("dataops.daemon")

JOBS_TABLE = "apscheduler_jobs"
MONITOR_SOON_S = 2.0
"""How long after an alert its monitor cycle starts (alerts meanwhile join it)."""
_PERSISTENT, _VOLATILE = "default", "volatile"
# Ids of the schedules this module owns in the persistent store.
_OWNED = ("run:", "monitor:", "checks:", "housekeeping")


def _interval(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds, timezone="UTC")


def _same_trigger(a: Any, b: Any) -> bool:
    # str() names the schedule (cron fields, the interval) without its start date.
    return type(a) is type(b) and str(a) == str(b) and getattr(a, "jitter", None) == getattr(b, "jitter", None)


class DaemonScheduler:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        cfg = daemon.config
        self.scheduler = BackgroundScheduler(
            jobstores={
                _PERSISTENT: SQLAlchemyJobStore(engine=daemon.rt.engine, tablename=JOBS_TABLE),
                _VOLATILE: MemoryJobStore(),
            },
            executors={"default": ThreadPoolExecutor(cfg.workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": cfg.misfire_grace_s},
            timezone=UTC,
        )
        self._soon: set[str] = set()
        self._soon_lock = threading.Lock()
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        # Our listener logs failures with the job's id; APScheduler's own line would repeat it.
        logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> dict[str, list[str]]:
        """Start paused (nothing fires until :meth:`resume`) and bring the
        stored schedules in line with the config."""
        self.scheduler.start(paused=True)
        changes = self.sync()
        self.daemon.trigger_monitor = self.monitor_soon
        for key, spec in ((s.key, s) for s in self.daemon.config.jobs):
            if spec.run_at_start and key in self.daemon.jobs:
                self._once(f"run-now:{key}", _tasks.run_pipeline, key)
        return changes

    def resume(self) -> None:
        self.scheduler.resume()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.state == STATE_RUNNING)

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop firing, then wait for the tasks in flight (``wait``)."""
        if self.scheduler.running:
            # Pause, and let a pass over the job stores in progress end (get_jobs
            # takes the same lock): APScheduler's shutdown during such a pass
            # kills its main loop with a JobLookupError.
            self.scheduler.pause()
            self.scheduler.get_jobs()
            self.scheduler.shutdown(wait=wait)

    # -- schedules ----------------------------------------------------------
    def wanted(self) -> dict[str, tuple[Any, tuple[Any, ...], Any]]:
        """Schedule id -> (task, args, trigger), from the config."""
        cfg = self.daemon.config
        out: dict[str, tuple[Any, tuple[Any, ...], Any]] = {
            "housekeeping": (_tasks.housekeeping, (), _interval(cfg.housekeeping_interval_s)),
        }
        specs = {s.key: s for s in cfg.jobs}
        for key in sorted(self.daemon.jobs):
            out[f"monitor:{key}"] = (_tasks.monitor, (key,), _interval(cfg.monitor_interval_s))
            out[f"checks:{key}"] = (_tasks.run_checks, (key,), _interval(cfg.checks_interval_s))
            spec = specs.get(key)
            if spec is not None and spec.schedule is not None:
                out[f"run:{key}"] = (_tasks.run_pipeline, (key,), spec.schedule.trigger())
        return out

    def sync(self) -> dict[str, list[str]]:
        """Keep stored schedules that match the config (a run missed while the
        daemon was down still fires, once), replace changed ones, drop the
        ones the config no longer has."""
        wanted = self.wanted()
        kept, added, removed = [], [], []
        for job in self.scheduler.get_jobs(jobstore=_PERSISTENT):
            if job.id.startswith(_OWNED) and job.id not in wanted:
                job.remove()
                removed.append(job.id)
        for job_id, (fn, args, trigger) in wanted.items():
            stored = self.scheduler.get_job(job_id, jobstore=_PERSISTENT)
            if stored is not None and _same_trigger(stored.trigger, trigger) and tuple(stored.args) == args:
                kept.append(job_id)
                continue
            self.scheduler.add_job(
                fn, trigger, args=args, id=job_id, name=job_id, jobstore=_PERSISTENT, replace_existing=True
            )
            added.append(job_id)
        _log.info("schedules_synced", kept=kept, added=added, removed=removed)
        return {"kept": kept, "added": added, "removed": removed}

    def _once(self, job_id: str, fn: Any, *args: Any, delay_s: float = 0.0) -> None:
        self.scheduler.add_job(
            fn, "date", run_date=datetime.now(UTC) + timedelta(seconds=delay_s), args=args, id=job_id, name=job_id,
            jobstore=_VOLATILE, replace_existing=True, misfire_grace_time=None,
        )

    def monitor_soon(self, key: str) -> None:
        """A monitor cycle of ``key`` shortly; requests while one is pending
        join it, so an alert storm makes a cycle every ``MONITOR_SOON_S``,
        not one per alert."""
        # Our own set, not get_job: APScheduler's store lock is held while it
        # writes the persistent store, and webhooks should not wait on that.
        with self._soon_lock:
            if key in self._soon:
                return
            self._soon.add(key)
        self._once(f"monitor-now:{key}", self._monitor_now, key, delay_s=MONITOR_SOON_S)

    def _monitor_now(self, key: str) -> bool:
        with self._soon_lock:
            self._soon.discard(key)  # alerts from now on ask for the next cycle
        return _tasks.monitor_now(key)

    def queue_answer(self, incident_id: str, *, approved: bool, by: str, reason: str) -> None:
        self._once(f"answer:{incident_id}", _tasks.answer, incident_id, approved, by, reason)

    def jobs(self) -> list[dict[str, Any]]:
        return [
            {
                "id": j.id,
                "next_run_time": j.next_run_time.isoformat() if j.next_run_time else None,
                "trigger": str(j.trigger),
            }
            for j in self.scheduler.get_jobs()
        ]

    # -- events -------------------------------------------------------------
    def _on_event(self, event: JobExecutionEvent) -> None:
        task = event.job_id.split(":", 1)[0].removesuffix("-now")
        if event.code == EVENT_JOB_ERROR:
            outcome = "error"
            _log.error(
                "task_failed", job=event.job_id, error=f"{type(event.exception).__name__}: {event.exception}",
                traceback=event.traceback,
            )
        elif event.code == EVENT_JOB_MISSED:
            outcome = "missed"
            _log.warning("task_missed", job=event.job_id, scheduled=str(event.scheduled_run_time))
        else:
            outcome = "skipped"
        self.daemon.metrics.tasks.labels(task, outcome).inc()
