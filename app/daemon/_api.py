"""The JSON API: incidents, approvals, runs and schedules, behind a bearer
token (``DATAOPS_API_TOKEN``). Without a token configured it refuses with
503 and says so: an open approval endpoint is never the default."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic_core import to_jsonable_python
from sqlmodel import Session, col, select

from agents import IncidentRow
from pipelines.runtime import RunRow

if TYPE_CHECKING:
    from app.daemon._core import Daemon
    from app.daemon._scheduler import DaemonScheduler

__all__ = ["api_router", "require_token"]

_NO_TOKEN = "the API is disabled: set DATAOPS_API_TOKEN (a bearer token clients send) to enable it"


def require_token(request: Request) -> None:
    """401 without the configured bearer token, 503 when none is configured."""
    daemon: Daemon = request.app.state.daemon
    secret = daemon.rt.settings.api_token
    if secret is None or not secret.get_secret_value():
        raise HTTPException(503, _NO_TOKEN)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), secret.get_secret_value().encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


# The incident store's "open": not closed, whether or not a human is needed.
_OPEN = ("open", "pending_approval", "escalated")
_LISTED = (
    "id", "pipeline", "dataset", "status", "root_cause", "confidence", "decision", "playbook", "summary",
    "opened_at", "updated_at", "closed_at", "seconds_to_resolve",
)


def _incident(row: Any) -> dict[str, Any]:
    return row.model_dump(mode="json")  # type: ignore[no-any-return]


def api_router(daemon: Daemon, scheduler: DaemonScheduler | None) -> APIRouter:
    api = APIRouter(prefix="/api", dependencies=[Depends(require_token)])

    @api.get("/incidents")
    def incidents(
        status: str | None = Query(default=None, description="open | resolved | failed | escalated | pending_approval | …"),
        limit: int = Query(default=50, ge=1, le=500),
    ) -> list[dict[str, Any]]:
        """Newest first, without the evidence (an alert storm makes it large):
        GET /api/incidents/{id} has everything."""
        q = select(*(getattr(IncidentRow, c) for c in _LISTED))
        if status == "open":
            q = q.where(col(IncidentRow.status).in_(_OPEN))
        elif status:
            q = q.where(IncidentRow.status == status)
        with Session(daemon.rt.engine) as s:
            rows = s.exec(q.order_by(col(IncidentRow.opened_at).desc()).limit(limit)).all()
        return [to_jsonable_python(dict(zip(_LISTED, row, strict=True))) for row in rows]

    @api.get("/incidents/{incident_id}")
    def incident(incident_id: str) -> dict[str, Any]:
        row = daemon.store.get(incident_id)
        audit = daemon.sup.guardrails.audit.entries(incident_id, limit=500)
        return {**_incident(row), "audit": [e.model_dump(mode="json") for e in audit]}

    def _answer(incident_id: str, approved: bool, by: str, reason: str) -> JSONResponse:
        row = daemon.waiting(incident_id)  # 400 now, not later in the background
        actor = f"api:{by}" if by else "api"
        if scheduler is None:
            out = daemon.answer(incident_id, approved=approved, by=actor, reason=reason)
            return JSONResponse({"incident": incident_id, "status": out.status})
        scheduler.queue_answer(incident_id, approved=approved, by=actor, reason=reason)
        return JSONResponse(
            {"incident": incident_id, "status": row.status, "queued": "approve" if approved else "reject"},
            status_code=202,
        )

    @api.post("/incidents/{incident_id}/approve")
    def approve(
        incident_id: str,
        by: str = Body(default="", embed=True, max_length=200),
        reason: str = Body(default="", embed=True, max_length=2000),
    ) -> JSONResponse:
        """Approve an incident waiting for a human; its graph resumes in the
        background (202), and the fix runs."""
        return _answer(incident_id, True, by, reason)

    @api.post("/incidents/{incident_id}/reject")
    def reject(
        incident_id: str,
        by: str = Body(default="", embed=True, max_length=200),
        reason: str = Body(default="", embed=True, max_length=2000),
    ) -> JSONResponse:
        return _answer(incident_id, False, by, reason)

    @api.get("/runs")
    def runs(
        pipeline: str | None = None,
        dataset: str | None = None,
        status: str | None = None,
        limit: int = Query(default=50, ge=1, le=500),
    ) -> list[dict[str, Any]]:
        q = select(RunRow)
        if pipeline:
            q = q.where(RunRow.pipeline == pipeline)
        if dataset:
            q = q.where(RunRow.dataset == dataset)
        if status:
            q = q.where(RunRow.status == status)
        with Session(daemon.rt.engine) as s:
            rows = list(s.exec(q.order_by(col(RunRow.created_at).desc()).limit(limit)))
        return [r.model_dump(mode="json") for r in rows]

    @api.get("/jobs")
    def jobs() -> dict[str, Any]:
        """The jobs this daemon runs and watches, and every schedule's next run."""
        return {
            "jobs": [
                {"key": k, "pipeline": j.pipeline, "dataset": j.dataset, "source": j.source_uri,
                 "paused": daemon.rt.control.is_paused(j.pipeline, j.dataset)}
                for k, j in sorted(daemon.jobs.items())
            ],
            "schedules": scheduler.jobs() if scheduler is not None else [],
        }

    return api
