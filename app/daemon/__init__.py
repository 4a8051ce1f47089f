"""The autonomous daemon: pipeline schedules, monitor cycles and
housekeeping on APScheduler, one HTTP server for probes, metrics, webhooks
(Alertmanager, Slack) and a small JSON API, and a clean, bounded stop."""

from app.daemon._config import DaemonConfig, FaultSpec, JobSpec, Schedule, load_daemon_config
from app.daemon._core import UNROUTED, Daemon
from app.daemon._scheduler import JOBS_TABLE, DaemonScheduler
from app.daemon._serve import run_once, serve

__all__ = [
    "JOBS_TABLE",
    "UNROUTED",
    "Daemon",
    "DaemonConfig",
    "DaemonScheduler",
    "FaultSpec",
    "JobSpec",
    "Schedule",
    "load_daemon_config",
    "run_once",
    "serve",
]
