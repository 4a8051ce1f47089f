"""What chat-ops needs from the rest of the system, as a protocol: the
daemon's live backend and :class:`~app.chatops.RuntimeOpsBackend` both fit it.

Every method returns plain JSON-able data; the Slack side only formats it.
Errors are :class:`~app.errors.DataOpsError` subclasses whose message is
shown to the person who asked (``NotFoundError`` for an unknown incident,
``InputError`` for an incident not waiting for a human, and so on).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["OpsBackend"]


@runtime_checkable
class OpsBackend(Protocol):
    """Operations on the running system, each done on behalf of ``by``
    (``slack:<user id>``), who is also the actor in the audit log.

    Shapes (keys a backend may leave out are shown as optional):

    - ``status()``: ``{"autofix": {"paused": bool, "by"?, "reason"?,
      "paused_pipelines"?: [str]}, "pipelines": [{"pipeline", "dataset"?,
      "paused"?: bool, "autofix_paused"?: bool, "last_run"?: {"id", "status",
      "read", "accepted", "duplicates", "quarantined", "ended_at"} | None}],
      "open_incidents": [incident]}``
    - an incident: ``{"id", "pipeline", "dataset"?, "status", "root_cause"?,
      "confidence"?, "decision"?, "playbook"?, "summary"?, "opened_at"?}``
    - ``show()``: an incident plus ``"evidence": [str]``, ``"candidates":
      [str]``, ``"actions": [{"tool", "status", "args"?, "error"?}]``,
      ``"notes": [str]``, ``"audit": [{"seq", "ts", "actor", "action",
      "verdict", "reason"}]``
    - ``approve()`` / ``reject()``: the incident as ``show()`` gives it, after
      its graph resumed
    - ``pause()`` / ``resume()``: ``{"scope": "*" | pipeline, "autofix_paused":
      bool, "pipeline_paused"?: bool, "global_paused"?: bool}``
    - ``run()``: a run summary ``{"run_id", "pipeline", "dataset", "status",
      "read", "accepted", "duplicates", "quarantined", "seconds", "error"?}``
    """

    def status(self) -> dict[str, Any]: ...

    def incidents(self, which: Literal["open", "all"]) -> list[dict[str, Any]]: ...

    def show(self, incident_id: str) -> dict[str, Any]: ...

    def approve(self, incident_id: str, by: str) -> dict[str, Any]: ...

    def reject(self, incident_id: str, by: str, reason: str) -> dict[str, Any]: ...

    def pause(self, pipeline: str | None, by: str) -> dict[str, Any]: ...

    def resume(self, pipeline: str | None, by: str) -> dict[str, Any]: ...

    def run(self, pipeline: str, by: str) -> dict[str, Any]: ...

    def ask(self, question: str, by: str) -> str: ...

    def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Record one chat-ops command. ``detail["outcome"]`` is ``accepted``
        (it runs), ``refused`` (the user's role is too low) or ``invalid``
        (it could not be parsed); the rest is the command's arguments."""
        ...
