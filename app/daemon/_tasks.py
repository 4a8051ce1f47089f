"""What the scheduler runs. The job store keeps these as references
(``app.daemon._tasks:run_pipeline``) with plain arguments, so the stored
schedules unpickle in a new process; each finds the daemon running there."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from app.errors import DataOpsError

if TYPE_CHECKING:
    from app.daemon._core import Daemon

__all__ = ["bind", "current", "run_pipeline", "monitor", "monitor_now", "run_checks", "housekeeping", "answer"]

_daemon: Daemon | None = None


def bind(daemon: Daemon | None) -> None:
    """Make ``daemon`` the one this process's scheduled tasks act on (None: unbind)."""
    global _daemon
    _daemon = daemon


def current() -> Daemon:
    if _daemon is None:
        raise DataOpsError("no daemon is running in this process")
    return _daemon


def _timed(task: str, fn: Callable[[Daemon], bool]) -> bool:
    """Run ``fn`` on the daemon; count it ok or skipped (an exception is
    counted by the scheduler's listener) and time it."""
    daemon = current()
    started = time.perf_counter()
    try:
        done = fn(daemon)
    finally:
        daemon.metrics.task_seconds.labels(task).observe(time.perf_counter() - started)
    daemon.metrics.tasks.labels(task, "ok" if done else "skipped").inc()
    return done


# A scheduled run waits this long for a monitor cycle or a check of its job to
# end; behind a remediation (which re-runs the job itself) it gives up.
RUN_WAIT_S = 60.0


def run_pipeline(key: str) -> bool:
    return _timed("run", lambda d: d.run_job(key, wait_s=RUN_WAIT_S)["status"] != "skipped")


def monitor(key: str) -> bool:
    return _timed("monitor", lambda d: d.monitor(key) is not None)


def monitor_now(key: str) -> bool:
    """A cycle asked for by an alert: waits a little for a busy job, since
    the periodic cycle may be minutes away."""
    return _timed("monitor", lambda d: d.monitor(key, wait_s=5.0) is not None)


def run_checks(key: str) -> bool:
    return _timed("checks", lambda d: d.run_checks(key)["status"] == "ok")


def housekeeping() -> bool:
    return _timed("housekeeping", lambda d: bool(d.housekeeping()) or True)


def answer(incident_id: str, approved: bool, by: str, reason: str = "") -> bool:
    def go(d: Daemon) -> bool:
        d.answer(incident_id, approved=approved, by=by, reason=reason)
        return True

    return _timed("answer", go)
