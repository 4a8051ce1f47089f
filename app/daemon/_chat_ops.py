"""The ops backend chat-ops gets from the daemon: the reference backend over
the daemon's live supervisor, with answers and runs taking the daemon's
job locks (a Slack approval never races a scheduled run of the same job)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.chatops import RuntimeOpsBackend
from app.errors import InputError

if TYPE_CHECKING:
    from app.daemon._core import Daemon

__all__ = ["DaemonOpsBackend"]


class DaemonOpsBackend(RuntimeOpsBackend):
    def __init__(self, daemon: Daemon) -> None:
        super().__init__(daemon.rt, lambda: daemon.sup)
        self.daemon = daemon

    def approve(self, incident_id: str, by: str) -> dict[str, Any]:
        self.daemon.answer(incident_id, approved=True, by=by)
        return self.show(incident_id)

    def reject(self, incident_id: str, by: str, reason: str) -> dict[str, Any]:
        self.daemon.answer(incident_id, approved=False, by=by, reason=reason)
        return self.show(incident_id)

    def run(self, pipeline: str, by: str) -> dict[str, Any]:
        jobs = self.daemon.jobs
        keys = [pipeline] if pipeline in jobs else [k for k, j in jobs.items() if j.pipeline == pipeline]
        if len(keys) != 1:
            known = ", ".join(sorted(jobs)) or "none"
            several = "runs for several datasets; name one of" if keys else "is not a job of this daemon; jobs:"
            raise InputError(f"{pipeline} {several} {known}")
        out = self.daemon.run_job(keys[0])
        if out["status"] == "skipped":
            why = "a run or a remediation is in progress" if out["reason"] == "busy" else "it is paused; resume it first"
            raise InputError(f"{keys[0]} did not run: {why}")
        return out
