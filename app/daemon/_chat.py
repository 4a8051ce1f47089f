"""Slack, when it is configured: the chat-ops app mounted on the daemon's
HTTP server, over an ops backend whose approvals and runs take the
daemon's job locks, and incident cards posted when a human is needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from app.errors import ConfigError, DataOpsError

if TYPE_CHECKING:
    from agents import IncidentRow
    from app.chatops import ChatOps
    from app.daemon._core import Daemon

__all__ = ["ChatBridge", "POST_ACTION"]

_log = structlog.get_logger("dataops.daemon")

POST_ACTION = "chatops.post_incident"
"""The audit action of an incident card posted to Slack (its reason: the status it was posted for)."""

_WAITING = ("pending_approval", "escalated")


class ChatBridge:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.chatops: ChatOps | None = None
        self.reason = "Slack is not configured: set DATAOPS_SLACK_SIGNING_SECRET and DATAOPS_SLACK_BOT_TOKEN"

    def open(self) -> ChatBridge:
        settings = self.daemon.rt.settings
        if settings.slack_signing_secret is None:
            return self
        from app.chatops import build_chatops
        from app.daemon._chat_ops import DaemonOpsBackend

        self.chatops = build_chatops(DaemonOpsBackend(self.daemon), settings)
        self.daemon.on_incidents = self.post
        _log.info("chatops_enabled", channel=settings.slack_channel)
        return self

    @property
    def enabled(self) -> bool:
        return self.chatops is not None

    def handle(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.chatops is None:
            raise ConfigError(self.reason)
        return self.chatops.handle_request(body, headers)

    def post(self, rows: Sequence[IncidentRow]) -> None:
        """Post each incident that now waits for a human, once per status
        (the audit log remembers, across restarts)."""
        if self.chatops is None or not self.daemon.rt.settings.slack_channel:
            return
        audit = self.daemon.sup.guardrails.audit
        for row in rows:
            if row.status not in _WAITING:
                continue
            posted = {e.reason for e in audit.entries(row.id, limit=500) if e.action == POST_ACTION}
            if row.status in posted:
                continue
            try:
                self.chatops.post_incident(row.id)
            except (DataOpsError, OSError) as exc:
                _log.error("incident_post_failed", incident=row.id, error=str(exc))
                continue
            audit.append(actor="daemon", action=POST_ACTION, verdict="allowed", pipeline=row.pipeline,
                         incident_id=row.id, reason=row.status)
            _log.info("incident_posted", incident=row.id, status=row.status)

    def close(self) -> None:
        if self.chatops is not None:
            self.chatops.close(wait=True)

    def describe(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "reason": None if self.enabled else self.reason}
