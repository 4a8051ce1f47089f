"""The daemon's one HTTP server: probes, metrics, webhooks (Alertmanager,
Slack) and the JSON API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from app.daemon._api import api_router, require_token
from app.errors import ConfigError, DataOpsError, InputError, NotFoundError

if TYPE_CHECKING:
    from app.daemon._chat import ChatBridge
    from app.daemon._core import Daemon
    from app.daemon._scheduler import DaemonScheduler

__all__ = ["build_app"]


def _status_of(exc: DataOpsError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, ConfigError):
        return 503
    return 500


def build_app(daemon: Daemon, scheduler: DaemonScheduler | None, chat: ChatBridge) -> FastAPI:
    app = FastAPI(title="dataops daemon", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.daemon, app.state.scheduler, app.state.chat = daemon, scheduler, chat
    requests = daemon.metrics.requests

    @app.exception_handler(DataOpsError)
    async def _dataops_error(request: Request, exc: DataOpsError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=_status_of(exc))

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        route = request.scope.get("route")
        requests.labels(getattr(route, "path", "other"), str(response.status_code)).inc()
        return response

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Alive: the process serves requests."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Ready: the metadata DB answers and the scheduler runs (it starts
        once in-flight incidents have been resumed)."""
        db_ok, db_detail = daemon.db_ok()
        sched_ok = scheduler is not None and scheduler.running
        body = {
            "status": "ready" if db_ok and sched_ok else "not ready",
            "db": db_detail,
            "scheduler": "running" if sched_ok else "not running",
            "slack": chat.describe(),
        }
        return JSONResponse(body, status_code=200 if db_ok and sched_ok else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(daemon.rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/webhooks/alertmanager")
    async def alertmanager(request: Request) -> JSONResponse:
        """An Alertmanager ``webhook_config`` notification (version 4); each
        alert becomes a signal of its pipeline and the jobs it names get a
        monitor cycle right away. Needs the API token."""
        require_token(request)
        body = await request.body()
        result = await run_in_threadpool(daemon.ingest_alerts, body)
        return JSONResponse(result)

    async def _slack(request: Request) -> Response:
        body = await request.body()
        status, headers, out = await run_in_threadpool(chat.handle, body, dict(request.headers))
        return Response(out, status_code=status, headers=headers)

    app.add_api_route("/slack/events", _slack, methods=["POST"])
    app.add_api_route("/slack/commands", _slack, methods=["POST"])
    app.include_router(api_router(daemon, scheduler))
    return app
