"""Alertmanager's webhook payload (``version: "4"``), parsed and turned into
the agents' signals.

The format is Alertmanager's ``webhook_config`` body: one notification per
alert group, carrying the group's alerts (firing and resolved), the labels
they share, and how many alerts ``max_alerts`` cut off. The daemon accepts it
on an HTTP endpoint and opens or updates incidents from the signals.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import InputError
from app.parsing import validation_summary

if TYPE_CHECKING:
    from tools import Signal

__all__ = [
    "AlertmanagerAlert",
    "AlertmanagerPayload",
    "SEVERITY_LEVELS",
    "alert_signal",
    "load_alertmanager_payload",
    "parse_alertmanager_payload",
    "payload_signals",
]

AlertStatus = Literal["firing", "resolved"]

# Signal levels by the alert's ``severity`` label (the log levels the tools use).
SEVERITY_LEVELS: dict[str, str] = {
    "critical": "error",
    "page": "error",
    "error": "error",
    "high": "error",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "info": "info",
    "low": "info",
    "none": "info",
}


def _zero_is_none(value: Any) -> Any:
    # Alertmanager writes Go's zero time (0001-01-01T00:00:00Z) for "not ended yet".
    if isinstance(value, str) and value.startswith("0001-01-01"):
        return None
    if isinstance(value, datetime) and value.year == 1:
        return None
    return value


class AlertmanagerAlert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    status: AlertStatus
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = ""

    _ends = field_validator("ends_at", mode="before")(_zero_is_none)

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("message") or self.name

    @property
    def message(self) -> str:
        """The summary, and the description when there is one."""
        description = self.annotations.get("description", "")
        summary = self.summary
        if description and description != summary:
            return f"{summary}: {description}" if summary else description
        return summary


class AlertmanagerPayload(BaseModel):
    """A webhook notification: one alert group."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    version: Literal["4"]
    group_key: str = Field(alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    status: AlertStatus
    receiver: str
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[AlertmanagerAlert] = Field(default_factory=list)

    @property
    def firing(self) -> list[AlertmanagerAlert]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[AlertmanagerAlert]:
        return [a for a in self.alerts if a.status == "resolved"]

    @property
    def total_alerts(self) -> int:
        """Alerts in the group, including those ``max_alerts`` cut off."""
        return len(self.alerts) + self.truncated_alerts


def parse_alertmanager_payload(data: bytes | str | dict[str, Any]) -> AlertmanagerPayload:
    """Parse a webhook body (raw JSON or already decoded). Anything that is
    not a version-4 payload is an :class:`InputError` with one line."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InputError(f"alertmanager payload is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"alertmanager payload must be a JSON object, not {type(data).__name__}")
    try:
        return AlertmanagerPayload.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"invalid alertmanager payload: {validation_summary(exc, root='payload')}") from None


def load_alertmanager_payload(path: Path) -> AlertmanagerPayload:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_alertmanager_payload(raw)


def alert_signal(alert: AlertmanagerAlert, *, group_key: str = "", t: float = 0.0) -> Signal:
    """One alert as an event signal: ``alert_firing`` or ``alert_resolved``,
    named after ``alertname``, with the alert's labels, a level from its
    ``severity`` label and the annotations as its message.

    A firing alert above info carries ``error="<alertname>: <summary>"``, so it
    is a failing signal (a symptom the monitor opens an incident on) whose
    fingerprint is the alert's name; a resolved one is not failing."""
    from tools import Signal  # here, not at import: tools may import the quality package

    severity = alert.severity.lower()
    level = SEVERITY_LEVELS.get(severity, "warning")
    firing = alert.status == "firing"
    extra: dict[str, Any] = {
        "alertname": alert.name or None,
        "severity": severity or None,
        "fingerprint": alert.fingerprint or None,
        "group_key": group_key or None,
    }
    return Signal(
        kind="event",
        t=t,
        ts=alert.starts_at if firing or alert.ends_at is None else alert.ends_at,
        pipeline=alert.labels.get("pipeline"),
        dataset=alert.labels.get("dataset"),
        stage=alert.labels.get("stage"),
        type=f"alert_{alert.status}",
        error=f"{alert.name}: {alert.summary}" if firing and level != "info" else None,
        name=alert.name,
        labels=dict(alert.labels),
        level=level,
        message=alert.message,
        **{k: v for k, v in extra.items() if v is not None},
    )


def payload_signals(payload: AlertmanagerPayload, *, t: float = 0.0) -> list[Signal]:
    """Every alert of a notification as a signal, in the payload's order."""
    return [alert_signal(a, group_key=payload.group_key, t=t) for a in payload.alerts]
