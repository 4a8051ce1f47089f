"""The Slack side: a Bolt app that verifies every request (signing secret,
five-minute timestamp window), checks the user's role, audits the command
and answers it; slow commands answer later through ``response_url``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import suppress
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltRequest, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from app.chatops._backend import OpsBackend
from app.chatops._blocks import APPROVE_ACTION, REJECT_ACTION, WAITING, Reply, incident_blocks, incident_text
from app.chatops._commands import SLOW, Command, parse_command
from app.chatops._roles import RoleBook, required_role
from app.chatops._views import (
    answer_reply,
    error_reply,
    help_reply,
    incidents_reply,
    outcome_reply,
    refusal_reply,
    run_reply,
    show_reply,
    status_reply,
    switch_reply,
    working_reply,
)
from app.errors import ConfigError, DataOpsError
from app.settings import Settings

__all__ = ["ChatOps", "SlackAPIError", "build_chatops"]

_log = structlog.get_logger("dataops.chatops")

COMMAND = "/dataops"


class SlackAPIError(DataOpsError):
    """Slack's Web API refused a call or could not be reached."""


class ChatOps:
    """``/dataops`` and the Approve / Reject buttons over an :class:`OpsBackend`.

    Mount :meth:`handle_request` on both Slack request URLs (slash commands
    and interactivity); call :meth:`post_incident` when an incident escalates
    or waits for approval; :meth:`close` waits for answers still being worked on.
    """

    def __init__(
        self,
        ops: OpsBackend,
        *,
        signing_secret: str,
        client: WebClient,
        roles: RoleBook,
        channel: str | None = None,
        workers: int = 2,
    ) -> None:
        self.ops = ops
        self.client = client
        self.roles = roles
        self.channel = channel
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataops-chatops")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()
        self.app = App(
            name="dataops",
            signing_secret=signing_secret,
            client=client,
            process_before_response=True,  # the reply is the HTTP response; slow work goes to our pool
            token_verification_enabled=False,  # no network at start-up; auth.test runs on the first request
        )
        self.app.command(COMMAND)(self._on_command)
        self.app.action(APPROVE_ACTION)(self._on_button)
        self.app.action(REJECT_ACTION)(self._on_button)

    # -- HTTP ------------------------------------------------------------------
    def handle_request(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        """One request from Slack, raw: ``(status, headers, body)`` to send back.
        A bad or stale signature gets 401 and changes nothing."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return 400, {"content-type": "text/plain;charset=utf-8"}, b"request body is not UTF-8"
        resp = self.app.dispatch(BoltRequest(body=text, headers=dict(headers)))
        return resp.status, resp.first_headers_without_set_cookie(), resp.body.encode("utf-8")

    # -- posting ---------------------------------------------------------------
    def post_incident(self, incident_id: str) -> None:
        """Post an incident card to the configured channel, with Approve /
        Reject buttons while it waits for a human."""
        channel = self.channel
        if not channel:
            raise ConfigError("slack_channel is not set (DATAOPS_SLACK_CHANNEL): nowhere to post incidents")
        inc = self.ops.show(incident_id)
        reply = Reply(f"dataops incident {incident_text(inc)}", incident_blocks(inc, buttons=True))
        self._call("chat.postMessage", lambda: self.client.chat_postMessage(
            channel=channel, text=reply.message()["text"], blocks=reply.blocks
        ))

    def close(self, *, wait: bool = True) -> None:
        """Stop taking slow work; with ``wait``, finish what was started."""
        self._pool.shutdown(wait=wait)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for the slow answers started so far; True when all finished."""
        with self._lock:
            pending = list(self._pending)
        _, not_done = wait(pending, timeout=timeout)
        return not not_done

    # -- listeners ---------------------------------------------------------------
    def _on_command(self, ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        user = str(body.get("user_id") or "")
        actor = f"slack:{user}"
        raw = str(body.get("text") or "")
        where = {"channel": body.get("channel_id"), "command_line": f"{COMMAND} {raw}".strip()}
        try:
            cmd = parse_command(raw)
        except DataOpsError as exc:
            self.ops.audit(actor, "chatops.invalid", {"outcome": "invalid", **where, "error": str(exc)})
            ack(**error_reply(str(exc)).message())
            return
        refusal = self._refusal(cmd.name, cmd.target if cmd.name in ("pause", "resume") else None, user)
        detail = {**where, **cmd.detail(), **_subject(cmd)}
        if refusal is not None:
            self.ops.audit(actor, f"chatops.{cmd.name}", {"outcome": "refused", **detail, "role": refusal[1]})
            ack(**refusal[0].message())
            return
        self.ops.audit(actor, f"chatops.{cmd.name}", {"outcome": "accepted", **detail})
        if cmd.name in SLOW:
            ack(**working_reply(_working_text(cmd)).message())
            self._submit(lambda: self._slow_command(cmd, user, respond), respond)
            return
        ack(**self._answer(cmd, user).message())

    def _on_button(self, ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        user = str((body.get("user") or {}).get("id") or "")
        actor = f"slack:{user}"
        incident = str(action.get("value") or "")
        name = "approve" if action.get("action_id") == APPROVE_ACTION else "reject"
        detail = {"command": name, "target": incident, "incident_id": incident, "via": "button"}
        refusal = self._refusal(name, None, user)
        if refusal is not None:
            self.ops.audit(actor, f"chatops.{name}", {"outcome": "refused", **detail, "role": refusal[1]})
            respond(**refusal[0].message(), replace_original=False)
            return
        self.ops.audit(actor, f"chatops.{name}", {"outcome": "accepted", **detail})
        channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
        ts = str((body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts") or "")
        self._submit(lambda: self._button_answer(name, incident, user, channel, ts, respond), respond)

    # -- the work ------------------------------------------------------------------
    def _refusal(self, name: str, pipeline: str | None, user: str) -> tuple[Reply, str] | None:
        role, problem = self.roles.role_of(user)
        needed = required_role(name, pipeline)
        if role.allows(needed):
            return None
        shown = f"{name} (everywhere)" if name == "resume" and pipeline is None else name
        return refusal_reply(shown, needed, role, problem), role.value

    def _answer(self, cmd: Command, user: str) -> Reply:
        """A fast command's reply; a backend error becomes a warning to the user."""
        by = f"slack:{user}"
        try:
            if cmd.name == "status":
                return status_reply(self.ops.status())
            if cmd.name == "incidents":
                return incidents_reply(self.ops.incidents("all" if cmd.which == "all" else "open"), cmd.which)
            if cmd.name == "show":
                return show_reply(self.ops.show(str(cmd.target)))
            if cmd.name == "pause":
                return switch_reply(self.ops.pause(cmd.target, by), True, user)
            if cmd.name == "resume":
                return switch_reply(self.ops.resume(cmd.target, by), False, user)
            return help_reply()
        except DataOpsError as exc:
            return error_reply(str(exc))

    def _slow_command(self, cmd: Command, user: str, respond: Respond) -> None:
        by = f"slack:{user}"
        try:
            if cmd.name == "approve":
                reply = outcome_reply(self.ops.approve(str(cmd.target), by), "approved", user)
            elif cmd.name == "reject":
                reason = cmd.text or f"rejected from Slack by {user}"
                reply = outcome_reply(self.ops.reject(str(cmd.target), by, reason), "rejected", user)
            elif cmd.name == "run":
                reply = run_reply(self.ops.run(str(cmd.target), by), user)
            else:
                reply = answer_reply(cmd.text, self.ops.ask(cmd.text, by))
        except DataOpsError as exc:
            reply = error_reply(str(exc))
        respond(**reply.message(), replace_original=False)

    def _button_answer(self, name: str, incident: str, user: str, channel: str, ts: str, respond: Respond) -> None:
        by = f"slack:{user}"
        try:
            if name == "approve":
                inc = self.ops.approve(incident, by)
            else:
                inc = self.ops.reject(incident, by, f"rejected from Slack by {user}")
        except DataOpsError as exc:
            respond(**error_reply(str(exc)).message(), replace_original=False)
            return
        reply = outcome_reply(inc, "approved" if name == "approve" else "rejected", user)
        still_waiting = inc.get("status") in WAITING
        if still_waiting:  # it asked again (another playbook): keep the buttons
            reply.blocks = incident_blocks(inc, buttons=True, note=f"{name}d by <@{user}>")
        if channel and ts:
            self._call("chat.update", lambda: self.client.chat_update(
                channel=channel, ts=ts, text=reply.message()["text"], blocks=reply.blocks
            ))
        else:
            respond(**reply.message(), replace_original=True)

    def _submit(self, work: Callable[[], None], respond: Respond) -> None:
        def guarded() -> None:
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - a worker must tell the person who asked that it failed
                _log.exception("chatops_work_failed")
                with suppress(OSError):  # Slack unreachable: the log line above is all that is left
                    respond(**error_reply(f"failed: {type(exc).__name__}: {exc}").message(), replace_original=False)

        future = self._pool.submit(guarded)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _call(self, method: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise SlackAPIError(f"slack {method} failed: {error or exc}") from None
        except OSError as exc:
            raise SlackAPIError(f"slack {method} failed: cannot reach the Slack API ({exc})") from None


def _subject(cmd: Command) -> dict[str, str]:
    if cmd.name in ("show", "approve", "reject") and cmd.target:
        return {"incident_id": cmd.target}
    if cmd.name in ("pause", "resume", "run") and cmd.target:
        return {"pipeline": cmd.target.split("/", 1)[0]}
    return {}


def _working_text(cmd: Command) -> str:
    return {
        "approve": f"Approving {cmd.target}: its fix runs now…",
        "reject": f"Rejecting {cmd.target}…",
        "run": f"Running {cmd.target}…",
        "ask": "Looking into it…",
    }[cmd.name]


def build_chatops(ops: OpsBackend, settings: Settings, *, client: WebClient | None = None) -> ChatOps:
    """Chat-ops from settings: ``slack_signing_secret`` (required),
    ``slack_bot_token`` (unless ``client`` is given), ``slack_api_url``,
    ``slack_channel`` (for :meth:`ChatOps.post_incident`) and ``slack_roles``."""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    if not secret:
        raise ConfigError("slack_signing_secret is not set (DATAOPS_SLACK_SIGNING_SECRET): requests cannot be verified")
    if client is None:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
        if not token:
            raise ConfigError("slack_bot_token is not set (DATAOPS_SLACK_BOT_TOKEN)")
        client = WebClient(token=token, base_url=settings.slack_api_url)
    elif not client.token:
        raise ConfigError("the Slack WebClient has no token")
    return ChatOps(ops, signing_secret=secret, client=client, roles=RoleBook(settings.slack_roles), channel=settings.slack_channel)
