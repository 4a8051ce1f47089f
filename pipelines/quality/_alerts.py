"""Alert routing by severity, with grouping, deduplication and a rate limit
per route, against alert fatigue (the target is 10–50 alerts a day at scale).

- critical → page: a PagerDuty Events API v2 event POSTed to ``pagerduty_url``;
- warning → Slack: an incoming-webhook message POSTed to ``slack_webhook_url``;
- info → log: a structlog line and an entry in :attr:`AlertRouter.report`.

A route that is not configured hands its alerts to the next one down (page →
Slack → log), so a critical alert is never dropped for want of a key.

Alerts are grouped per incident by a group key (Alertmanager's, or one made
of ``group_by`` labels). The first firing alert of a group notifies; more
alerts of the same group are *grouped* into it and repeats of one alert are
*deduplicated*, until ``repeat_interval_s`` has passed, when the group
notifies again. When the last firing alert of a notified group resolves, the
resolve is sent once; later resolves are deduplicated. Triggers and repeats
spend a token of their route's bucket (``per_hour``, ``burst``); an alert
with no token left is *rate_limited* and its group stays un-notified, so the
next firing after a refill notifies. Resolves never wait for a token.

Every decision is kept (:attr:`AlertRouter.decisions`), counted
(:meth:`AlertRouter.stats`) and, with a registry, exported as
``dataops_alert_decisions_total{route, decision}``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import structlog
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from pydantic import BaseModel, ConfigDict, Field

from app.errors import StorageError
from pipelines.quality._alertmanager import AlertmanagerAlert, AlertmanagerPayload
from pipelines.quality._alerts_notify import TokenBucket, pagerduty_event, post_json, slack_message

__all__ = [
    "Alert",
    "AlertDecision",
    "AlertRouter",
    "AlertRoutingConfig",
    "DECISIONS",
    "ROUTES",
    "RouteLimit",
]

Severity = Literal["critical", "warning", "info"]
Route = Literal["page", "slack", "log"]
Decision = Literal["sent", "grouped", "deduplicated", "rate_limited", "failed"]
ROUTES: tuple[Route, ...] = ("page", "slack", "log")
DECISIONS: tuple[Decision, ...] = ("sent", "grouped", "deduplicated", "rate_limited", "failed")
_SEVERITY_ROUTE: dict[str, Route] = {"critical": "page", "warning": "slack", "info": "log"}
_SEVERITY_ALIASES = {"page": "critical", "error": "critical", "high": "critical", "warn": "warning", "medium": "warning", "low": "info", "none": "info"}

_log = structlog.get_logger("dataops.alerts")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Alert(BaseModel):
    """One alert to route: from Alertmanager, a monitor rule or a check."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    severity: Severity = "warning"
    status: Literal["firing", "resolved"] = "firing"
    summary: str = ""
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    group_key: str | None = Field(default=None, description="The incident it belongs to; default from group_by labels.")
    fingerprint: str | None = Field(default=None, description="The alert's identity; default from name and labels.")
    source: str | None = None
    starts_at: datetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_alertmanager(cls, alert: AlertmanagerAlert, *, group_key: str | None = None) -> Alert:
        severity = alert.severity.lower()
        severity = _SEVERITY_ALIASES.get(severity, severity)
        return cls(
            name=alert.name or "unnamed",
            severity=severity if severity in _SEVERITY_ROUTE else "warning",  # type: ignore[arg-type]
            status=alert.status,
            summary=alert.summary,
            description=alert.annotations.get("description", ""),
            labels=dict(alert.labels),
            group_key=group_key,
            fingerprint=alert.fingerprint or None,
            starts_at=alert.starts_at,
            details={"generator_url": alert.generator_url} if alert.generator_url else {},
        )

    def identity(self) -> str:
        if self.fingerprint:
            return self.fingerprint
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k != "alertname")
        return hashlib.sha256(f"{self.name}|{labels}".encode()).hexdigest()[:16]


class RouteLimit(BaseModel):
    """A token bucket: ``burst`` notifications at once, ``per_hour`` sustained."""

    model_config = ConfigDict(extra="forbid")

    per_hour: float = Field(gt=0)
    burst: int = Field(ge=1)


def _default_limits() -> dict[Route, RouteLimit | None]:
    # Ceilings, not a budget: with grouping, a normal day stays well inside
    # 10–50 notifications; a storm cannot exceed ~50 pages + ~100 messages a day.
    return {"page": RouteLimit(per_hour=2, burst=5), "slack": RouteLimit(per_hour=4, burst=10), "log": None}


class AlertRoutingConfig(BaseModel):
    """Where alerts go and how often. A route without a URL (or, for the
    page, a routing key) is off; ``None`` as a limit means unlimited."""

    model_config = ConfigDict(extra="forbid")

    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    pagerduty_routing_key: str | None = None
    slack_webhook_url: str | None = None
    source: str = "dataops"
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "pipeline", "dataset"])
    repeat_interval_s: float = Field(default=4 * 3600, gt=0, description="A still-firing group notifies again after this.")
    forget_after_s: float = Field(default=24 * 3600, gt=0, description="Idle or resolved groups are forgotten after this.")
    limits: dict[Route, RouteLimit | None] = Field(default_factory=_default_limits)
    timeout_s: float = Field(default=10.0, gt=0)
    max_decisions: int = Field(default=10_000, ge=1, description="Decisions kept for inspection (newest).")


class AlertDecision(BaseModel):
    """What happened to one alert, and why."""

    at: datetime
    route: Route
    decision: Decision
    alert: str
    severity: Severity
    status: Literal["firing", "resolved"]
    group_key: str
    reason: str = ""
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


@dataclass
class _Group:
    key: str
    route: Route
    firing: set[str] = field(default_factory=set)
    notified: bool = False
    resolved: bool = False
    last_sent: float | None = None
    last_seen: float = 0.0
    size_hint: int = 0


class AlertRouter:
    """Routes alerts; ``clock`` is injectable (tests), ``client`` too (an
    ``httpx.Client``; one with ``timeout_s`` is made on first use)."""

    def __init__(
        self,
        config: AlertRoutingConfig | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        client: httpx.Client | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.config = config or AlertRoutingConfig()
        self.clock = clock
        self._client = client
        self._own_client = client is None
        self._groups: dict[tuple[Route, str], _Group] = {}
        self._buckets: dict[Route, TokenBucket] = {}
        self._lock = threading.Lock()
        self.decisions: deque[AlertDecision] = deque(maxlen=self.config.max_decisions)
        self.counts: Counter[tuple[Route, Decision]] = Counter()
        self.report: list[AlertDecision] = []  # info alerts that were logged (and their resolves)
        self._metric = (
            PromCounter(
                "dataops_alert_decisions",
                "Alert routing decisions, by route and decision.",
                ["route", "decision"],
                registry=registry,
            )
            if registry is not None
            else None
        )

    # -- routing ------------------------------------------------------------
    def route_of(self, severity: str) -> Route:
        """The route an alert of ``severity`` takes, after fallbacks."""
        route = _SEVERITY_ROUTE.get(severity, "slack")
        if route == "page" and not self.config.pagerduty_routing_key:
            route = "slack"
        if route == "slack" and not self.config.slack_webhook_url:
            route = "log"
        return route

    def group_key_of(self, alert: Alert) -> str:
        if alert.group_key:
            return alert.group_key
        labels = {"alertname": alert.name, **alert.labels}
        parts = ",".join(f'{k}="{labels[k]}"' for k in self.config.group_by if labels.get(k))
        return f"{{{parts}}}"

    def handle(self, alert: Alert, *, group_size: int | None = None) -> AlertDecision:
        """Route one alert. ``group_size`` is how many alerts the group has
        when the caller knows more than this router saw (an Alertmanager
        notification). A delivery failure is recorded as ``failed`` (the group
        stays un-notified, so a retry sends it) and raised as :class:`StorageError`."""
        with self._lock:
            now = self.clock()
            t = now.timestamp()
            self._forget(t)
            route = self.route_of(alert.severity)
            key = self.group_key_of(alert)
            group = self._groups.get((route, key))
            if group is not None and group.resolved and alert.status == "resolved":
                group.last_seen = t
                return self._record(now, route, "deduplicated", alert, key, "resolve already sent")
            if group is None or group.resolved:
                group = self._groups[(route, key)] = _Group(key=key, route=route)
            group.last_seen = t
            group.size_hint = group_size or 0
            if alert.status == "firing":
                decision, reason = self._firing(alert, group, t)
            else:
                decision, reason = self._resolved(alert, group, t)
            return self._record(now, route, decision, alert, key, reason)

    def handle_all(self, alerts: Iterable[Alert]) -> list[AlertDecision]:
        return [self.handle(a) for a in alerts]

    def handle_payload(self, payload: AlertmanagerPayload) -> list[AlertDecision]:
        """Every alert of an Alertmanager notification, grouped by its group
        key; a notification counts all the group's firing alerts (truncated ones too)."""
        size = len(payload.firing) + payload.truncated_alerts
        return [
            self.handle(Alert.from_alertmanager(a, group_key=payload.group_key), group_size=size)
            for a in payload.alerts
        ]

    def _firing(self, alert: Alert, group: _Group, t: float) -> tuple[Decision, str]:
        member = alert.identity()
        new_member = member not in group.firing
        group.firing.add(member)
        if group.notified and group.last_sent is not None and t - group.last_sent < self.config.repeat_interval_s:
            if new_member:
                return "grouped", f"joins a group notified {t - group.last_sent:.0f}s ago ({len(group.firing)} firing)"
            return "deduplicated", f"already notified {t - group.last_sent:.0f}s ago"
        repeat = group.notified
        if not self._take(group.route, t):
            return "rate_limited", f"{group.route} route has no token left"
        self._send(alert, group, resolve=False, t=t)
        group.notified, group.last_sent = True, t
        return "sent", "repeat: still firing after the repeat interval" if repeat else "first alert of the group"

    def _resolved(self, alert: Alert, group: _Group, t: float) -> tuple[Decision, str]:
        group.firing.discard(alert.identity())
        if not group.notified:
            if not group.firing:
                self._groups.pop((group.route, group.key), None)
            return "deduplicated", "nothing was sent for this group"
        if group.firing:
            return "grouped", f"{len(group.firing)} alert(s) of the group still firing"
        self._send(alert, group, resolve=True, t=t)
        group.resolved = True
        return "sent", "last alert of the group resolved"

    # -- delivery -------------------------------------------------------------
    def _take(self, route: Route, t: float) -> bool:
        limit = self.config.limits.get(route)
        if limit is None:
            return True
        bucket = self._buckets.get(route)
        if bucket is None:
            bucket = self._buckets[route] = TokenBucket(limit.per_hour, limit.burst, t)
        return bucket.take(t)

    def _refund(self, route: Route) -> None:
        if route in self._buckets:
            self._buckets[route].refund()

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.config.timeout_s)
        return self._client

    def _send(self, alert: Alert, group: _Group, *, resolve: bool, t: float) -> None:
        cfg = self.config
        size = max(len(group.firing), group.size_hint, 1)
        try:
            if group.route == "page":
                assert cfg.pagerduty_routing_key is not None
                body = pagerduty_event(
                    alert, routing_key=cfg.pagerduty_routing_key, group_key=group.key,
                    group_size=size, source=cfg.source, resolve=resolve,
                )
                post_json(self.client, cfg.pagerduty_url, body, what="PagerDuty event")
            elif group.route == "slack":
                assert cfg.slack_webhook_url is not None
                body = slack_message(alert, group_key=group.key, group_size=size, source=cfg.source, resolve=resolve)
                post_json(self.client, cfg.slack_webhook_url, body, what="Slack message")
            else:
                _log.info(
                    "alert_resolved" if resolve else "alert",
                    alert=alert.name, severity=alert.severity, summary=alert.summary,
                    group_key=group.key, labels=alert.labels,
                )
        except StorageError as exc:
            if not resolve:
                self._refund(group.route)
            self._record(self.clock(), group.route, "failed", alert, group.key, str(exc))
            raise

    # -- bookkeeping ------------------------------------------------------------
    def _record(
        self, now: datetime, route: Route, decision: Decision, alert: Alert, key: str, reason: str
    ) -> AlertDecision:
        d = AlertDecision(
            at=now, route=route, decision=decision, alert=alert.name, severity=alert.severity,
            status=alert.status, group_key=key, reason=reason, summary=alert.summary, labels=dict(alert.labels),
        )
        self.decisions.append(d)
        self.counts[(route, decision)] += 1
        if self._metric is not None:
            self._metric.labels(route, decision).inc()
        if route == "log" and decision == "sent":
            self.report.append(d)
        if decision != "sent":
            _log.debug("alert_" + decision, alert=alert.name, route=route, group_key=key, reason=reason)
        return d

    def _forget(self, t: float) -> None:
        horizon = t - self.config.forget_after_s
        for k in [k for k, g in self._groups.items() if g.last_seen < horizon]:
            del self._groups[k]

    def stats(self) -> dict[str, dict[str, int]]:
        """Decision counts per route: ``{"page": {"sent": 2, "grouped": 5, …}, …}``."""
        return {r: {d: self.counts[(r, d)] for d in DECISIONS} for r in ROUTES}

    def open_groups(self) -> list[str]:
        """Group keys notified and not yet resolved."""
        return sorted(g.key for g in self._groups.values() if g.notified and not g.resolved)

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> AlertRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
