"""Running the daemon: the HTTP server in the main thread, the scheduler in
the background, and a bounded, clean stop on SIGTERM.

Start-up: open everything, start the scheduler paused, serve HTTP (alive,
not ready), resume every in-flight incident from its checkpoint, then let
the scheduler run (ready). Stop (SIGTERM or SIGINT): uvicorn stops taking
requests and finishes the ones in progress, the scheduler finishes the
tasks in flight (each agent step and pipeline batch is checkpointed), and
the process exits 0 — or 1 if that took longer than ``shutdown_timeout_s``
(what was cut off resumes from its checkpoint at the next start).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any

import structlog
import uvicorn

from app.daemon import _tasks
from app.daemon._chat import ChatBridge
from app.daemon._config import DaemonConfig
from app.daemon._core import Daemon
from app.daemon._http import build_app
from app.daemon._scheduler import DaemonScheduler
from app.errors import ConfigError
from pipelines.runtime import Runtime

__all__ = ["serve", "run_once", "listen"]

_log = structlog.get_logger("dataops.daemon")

# uvicorn's own grace for requests in progress, inside the overall bound.
_HTTP_GRACE_S = 5.0


def listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket now, so a taken port is one clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Stop:
    """SIGTERM / SIGINT: ask the server to stop; a signal during the final
    shutdown is a person insisting, and exits at once."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.server: uvicorn.Server | None = None
        self.final = False
        self.at: float | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.final:
            _log.error("shutdown_forced", signal=signal.Signals(signum).name)
            sys.stderr.flush()
            os._exit(1)
        if self.at is None:
            self.at = time.monotonic()
        self.requested.set()
        if self.server is not None:
            self.server.should_exit = True


def serve(rt: Runtime, config: DaemonConfig, *, host: str = "127.0.0.1", port: int = 8080) -> int:
    """Run until SIGTERM / SIGINT; returns the exit status."""
    stop = _Stop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)  # uvicorn restores and re-raises to these after its own stop
    sock = listen(host, port)
    daemon = Daemon(rt, config, agent_settings=config.agents).open()
    _tasks.bind(daemon)
    chat = ChatBridge(daemon).open()
    scheduler = DaemonScheduler(daemon)
    scheduler.start()
    app = build_app(daemon, scheduler, chat)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=int(_HTTP_GRACE_S),
            server_header=False,
        )
    )
    stop.server = server

    def start_up() -> None:
        try:
            resumed = daemon.resume_in_flight(wait_s=None)
            if resumed:
                _log.info("incidents_resumed", incidents={r.id: r.status for r in resumed})
        finally:
            if not stop.requested.is_set():
                scheduler.resume()
                _log.info("daemon_ready", jobs=sorted(daemon.jobs))

    starter = threading.Thread(target=start_up, name="dataops-startup")
    starter.start()
    _log.info("daemon_listening", host=host, port=sock.getsockname()[1], pid=os.getpid())
    if not stop.requested.is_set():
        server.run(sockets=[sock])
    stop.final = True
    deadline = (stop.at or time.monotonic()) + config.shutdown_timeout_s
    return _shut_down(daemon, scheduler, chat, starter, deadline)


def _shut_down(daemon: Daemon, scheduler: DaemonScheduler, chat: ChatBridge, starter: threading.Thread, deadline: float) -> int:
    started = time.monotonic()
    _log.info("daemon_stopping", left_s=round(deadline - started, 3))

    def finish() -> None:
        starter.join()
        scheduler.shutdown(wait=True)
        chat.close()

    finisher = threading.Thread(target=finish, name="dataops-shutdown", daemon=True)
    finisher.start()
    finisher.join(max(0.0, deadline - time.monotonic()))
    if finisher.is_alive():
        _log.error("shutdown_timeout", note="in-flight work resumes from its checkpoint at the next start")
        sys.stderr.flush()
        os._exit(1)  # worker threads cannot be interrupted; everything they did is checkpointed
    daemon.close()
    _tasks.bind(None)
    daemon.rt.close()
    _log.info("daemon_stopped", seconds=round(time.monotonic() - started, 3))
    return 0


def run_once(rt: Runtime, config: DaemonConfig) -> dict[str, Any]:
    """One pass of everything (resume, runs, checks, monitor cycles,
    pruning), then return."""
    with Daemon(rt, config, agent_settings=config.agents) as daemon:
        chat = ChatBridge(daemon).open()
        try:
            return daemon.once()
        finally:
            chat.close()
