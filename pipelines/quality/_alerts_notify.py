"""What a notification looks like on the wire: PagerDuty Events API v2
events, Slack incoming-webhook messages, and the HTTP POST that delivers
them (errors become :class:`StorageError`, without the secret part of a URL)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from app.errors import StorageError

if TYPE_CHECKING:
    from pipelines.quality._alerts import Alert

__all__ = ["TokenBucket", "dedup_key", "pagerduty_event", "post_json", "slack_message"]

# PagerDuty's limits (Events API v2): summary ≤ 1024 chars, dedup_key ≤ 255.
_PD_SUMMARY = 1024
# Slack's block limits: header text ≤ 150 chars, section text ≤ 3000, ≤ 10 fields of ≤ 2000.
_SLACK_HEADER, _SLACK_TEXT, _SLACK_FIELDS = 150, 3000, 10
_PD_SEVERITIES = {"critical", "error", "warning", "info"}
_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
_FIELD_LABELS = ("pipeline", "dataset", "stage", "column", "check", "reason", "instance")


class TokenBucket:
    """``burst`` tokens, refilled at ``per_hour`` an hour; one per notification."""

    def __init__(self, per_hour: float, burst: int, now: float) -> None:
        self.rate = per_hour / 3600.0
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def available(self, now: float) -> float:
        self._refill(now)
        return self.tokens

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def refund(self) -> None:
        self.tokens = min(self.capacity, self.tokens + 1.0)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dedup_key(group_key: str) -> str:
    """PagerDuty's incident key for a group: stable across repeats and restarts."""
    return "dataops-" + hashlib.sha256(group_key.encode()).hexdigest()[:32]


def pagerduty_event(
    alert: Alert, *, routing_key: str, group_key: str, group_size: int, source: str, resolve: bool = False
) -> dict[str, Any]:
    """An Events API v2 event: ``trigger`` with the alert as payload, or a
    ``resolve`` of the group's incident (which needs only the key)."""
    key = dedup_key(group_key)
    if resolve:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    severity = alert.severity if alert.severity in _PD_SEVERITIES else "warning"
    payload: dict[str, Any] = {
        "summary": _cut(f"{alert.name}: {alert.summary}" if alert.summary else alert.name, _PD_SUMMARY),
        "source": alert.labels.get("instance") or alert.source or source,
        "severity": severity,
    }
    if alert.starts_at is not None:
        payload["timestamp"] = alert.starts_at.isoformat()
    for field, value in (
        ("component", alert.labels.get("pipeline")),
        ("group", alert.labels.get("dataset")),
        ("class", alert.name),
    ):
        if value:
            payload[field] = value
    payload["custom_details"] = {
        **({"description": alert.description} if alert.description else {}),
        "labels": dict(sorted(alert.labels.items())),
        "group_key": group_key,
        "alerts_in_group": group_size,
        **alert.details,
    }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": payload,
        "client": source,
    }


def _mrkdwn(text: str) -> str:
    # Slack's three control characters in mrkdwn text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: Alert, *, group_key: str, group_size: int, source: str, resolve: bool = False) -> dict[str, Any]:
    """An incoming-webhook message: ``text`` (the notification line) and
    ``blocks`` (header, description, the labels that place it, context)."""
    state = "RESOLVED" if resolve else alert.severity.upper()
    emoji = ":white_check_mark:" if resolve else _EMOJI.get(alert.severity, ":bell:")
    title = f"{alert.name}: {alert.summary}" if alert.summary else alert.name
    text = f"[{state}] {title}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(f"{emoji} {text}", _SLACK_HEADER), "emoji": True}}
    ]
    if alert.description:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(_mrkdwn(alert.description), _SLACK_TEXT)}})
    fields = [{"type": "mrkdwn", "text": f"*Severity*\n{alert.severity}"}]
    fields += [
        {"type": "mrkdwn", "text": f"*{name.capitalize()}*\n{_mrkdwn(alert.labels[name])}"}
        for name in _FIELD_LABELS
        if alert.labels.get(name)
    ]
    blocks.append({"type": "section", "fields": fields[:_SLACK_FIELDS]})
    more = f" · {group_size} alerts in this group" if group_size > 1 else ""
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _mrkdwn(f"{source} · group {group_key}{more}")}]}
    )
    return {"text": text, "blocks": blocks}


def _public(url: str) -> str:
    """A webhook URL without its secret path or query (Slack's carries a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "(invalid URL)"


def post_json(client: httpx.Client, url: str, body: dict[str, Any], *, what: str) -> None:
    """POST ``body``; any transport error or non-2xx answer is a one-line :class:`StorageError`."""
    try:
        response = client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise StorageError(f"{what} to {_public(url)} failed: {exc.__class__.__name__}: {exc}") from None
    if not response.is_success:
        detail = " ".join(response.text.split())[:200]
        raise StorageError(f"{what} to {_public(url)} answered {response.status_code}: {detail}")
