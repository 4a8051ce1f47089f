"""Alert routing against a local HTTP server standing in for PagerDuty's
Events API and a Slack incoming webhook: the exact bodies they receive, and
grouping, deduplication, resolve-once and rate limiting on an injected clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from app.errors import StorageError
from pipelines.quality import (
    Alert,
    AlertRouter,
    AlertRoutingConfig,
    RouteLimit,
    TokenBucket,
    dedup_key,
    load_alertmanager_payload,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "alertmanager"
PD_PATH = "/v2/enqueue"
SLACK_PATH = "/services/T0001/B0002/s3cr3tt0k3n"
T0 = datetime(2024, 11, 5, 9, 0, tzinfo=UTC)


class FakeServices:
    """PagerDuty and Slack on one local port: records every POST, answers
    like the real services (202 JSON, 200 "ok") unless told to fail."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_with: int | None = None
        services = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                services.received.append((self.path, body))
                services.headers.append(dict(self.headers))
                if services.fail_with:
                    self._answer(services.fail_with, b"invalid_payload", "text/plain")
                elif self.path == PD_PATH:
                    answer = {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}
                    self._answer(202, json.dumps(answer).encode(), "application/json")
                elif self.path == SLACK_PATH:
                    self._answer(200, b"ok", "text/html")
                else:
                    self._answer(404, b"no_service", "text/plain")

            def _answer(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for p, b in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def services() -> Iterator[FakeServices]:
    s = FakeServices()
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _config(services: FakeServices, **kw: Any) -> AlertRoutingConfig:
    return AlertRoutingConfig(
        pagerduty_url=services.url + PD_PATH,
        pagerduty_routing_key="R0UT1NGKEY0000000000000000000000",
        slack_webhook_url=services.url + SLACK_PATH,
        **kw,
    )


@pytest.fixture
def router(services: FakeServices, clock: Clock) -> Iterator[AlertRouter]:
    r = AlertRouter(_config(services), clock=clock)
    yield r
    r.close()


QUARANTINE = Alert(
    name="DataopsQuarantineRatioCritical",
    severity="critical",
    summary="ingestion quarantines 31% of photos",
    description="31% of the records read in the last 15m were quarantined (critical above 20%).",
    labels={"pipeline": "ingestion", "dataset": "photos", "instance": "worker-1:9464"},
    starts_at=datetime(2024, 11, 5, 8, 59, 30, tzinfo=UTC),
)
GROUP = '{alertname="DataopsQuarantineRatioCritical",pipeline="ingestion",dataset="photos"}'


def test_critical_pages_with_an_events_v2_trigger_then_resolve(services: FakeServices, router: AlertRouter) -> None:
    d = router.handle(QUARANTINE)
    assert (d.route, d.decision, d.group_key) == ("page", "sent", GROUP)
    key = dedup_key(GROUP)
    assert key.startswith("dataops-") and len(key) <= 255
    assert services.bodies(PD_PATH) == [
        {
            "routing_key": "R0UT1NGKEY0000000000000000000000",
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": "DataopsQuarantineRatioCritical: ingestion quarantines 31% of photos",
                "source": "worker-1:9464",
                "severity": "critical",
                "timestamp": "2024-11-05T08:59:30+00:00",
                "component": "ingestion",
                "group": "photos",
                "class": "DataopsQuarantineRatioCritical",
                "custom_details": {
                    "description": "31% of the records read in the last 15m were quarantined (critical above 20%).",
                    "labels": {"dataset": "photos", "instance": "worker-1:9464", "pipeline": "ingestion"},
                    "group_key": GROUP,
                    "alerts_in_group": 1,
                },
            },
            "client": "dataops",
        }
    ]
    assert services.headers[0]["Content-Type"] == "application/json"
    d = router.handle(QUARANTINE.model_copy(update={"status": "resolved"}))
    assert (d.route, d.decision) == ("page", "sent")
    assert services.bodies(PD_PATH)[1] == {
        "routing_key": "R0UT1NGKEY0000000000000000000000",
        "event_action": "resolve",
        "dedup_key": key,
    }
    assert services.bodies(SLACK_PATH) == []


def test_warning_goes_to_slack_as_text_and_blocks(services: FakeServices, router: AlertRouter) -> None:
    alert = Alert(
        name="DataopsDriftPsiHigh",
        severity="warning",
        summary="drift on photos brightness (PSI 0.183)",
        description="PSI 0.183 against the reference is above 0.1 & rising <fast>.",
        labels={"pipeline": "ingestion", "dataset": "photos", "column": "brightness"},
    )
    assert router.handle(alert).decision == "sent"
    group = '{alertname="DataopsDriftPsiHigh",pipeline="ingestion",dataset="photos"}'
    assert services.received == [
        (
            SLACK_PATH,
            {
                "text": "[WARNING] DataopsDriftPsiHigh: drift on photos brightness (PSI 0.183)",
                "blocks": [
                    {
                        "type": "header",
                        "text": {
                            "type": "plain_text",
                            "text": ":warning: [WARNING] DataopsDriftPsiHigh: drift on photos brightness (PSI 0.183)",
                            "emoji": True,
                        },
                    },
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": "PSI 0.183 against the reference is above 0.1 &amp; rising &lt;fast&gt;.",
                        },
                    },
                    {
                        "type": "section",
                        "fields": [
                            {"type": "mrkdwn", "text": "*Severity*\nwarning"},
                            {"type": "mrkdwn", "text": "*Pipeline*\ningestion"},
                            {"type": "mrkdwn", "text": "*Dataset*\nphotos"},
                            {"type": "mrkdwn", "text": "*Column*\nbrightness"},
                        ],
                    },
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": f"dataops · group {group}"}]},
                ],
            },
        )
    ]
    router.handle(alert.model_copy(update={"status": "resolved"}))
    resolved = services.bodies(SLACK_PATH)[1]
    assert resolved["text"] == "[RESOLVED] DataopsDriftPsiHigh: drift on photos brightness (PSI 0.183)"
    assert resolved["blocks"][0]["text"]["text"].startswith(":white_check_mark: [RESOLVED]")


def test_info_is_logged_and_reported_not_posted(services: FakeServices, router: AlertRouter) -> None:
    info = Alert(name="DataopsBatchSizeChanged", severity="info", summary="batch size changed", labels={"pipeline": "ingestion", "dataset": "photos"})
    d = router.handle(info)
    assert (d.route, d.decision) == ("log", "sent")
    assert router.handle(info).decision == "deduplicated"
    assert [r.alert for r in router.report] == ["DataopsBatchSizeChanged"]
    assert router.report[0].summary == "batch size changed"
    assert services.received == []


def test_one_notification_per_group_until_the_repeat_interval(
    services: FakeServices, router: AlertRouter, clock: Clock
) -> None:
    # Three alerts of one incident (same group key, different members).
    members = [
        Alert(name="DataopsDriftPsiCritical", severity="critical", summary=f"major drift on {c}", group_key="drift/photos",
              labels={"pipeline": "ingestion", "dataset": "photos", "column": c})
        for c in ("brightness", "width", "height")
    ]
    assert [router.handle(a).decision for a in members] == ["sent", "grouped", "grouped"]
    clock.advance(minutes=30)
    assert [router.handle(a).decision for a in members] == ["deduplicated"] * 3
    assert len(services.received) == 1
    clock.advance(hours=4)  # the default repeat interval
    decisions = [router.handle(a) for a in members]
    assert [d.decision for d in decisions] == ["sent", "deduplicated", "deduplicated"]
    assert "repeat" in decisions[0].reason
    first, repeat = services.bodies(PD_PATH)
    assert first["dedup_key"] == repeat["dedup_key"] == dedup_key("drift/photos")
    assert first["payload"]["custom_details"]["alerts_in_group"] == 1
    assert repeat["payload"]["custom_details"]["alerts_in_group"] == 3
    assert router.open_groups() == ["drift/photos"]


def test_resolve_is_sent_once_when_the_last_member_resolves(
    services: FakeServices, router: AlertRouter, clock: Clock
) -> None:
    a = QUARANTINE
    b = QUARANTINE.model_copy(update={"fingerprint": "second-member"})
    assert [router.handle(x).decision for x in (a, b)] == ["sent", "grouped"]
    clock.advance(minutes=5)
    resolved = [router.handle(x.model_copy(update={"status": "resolved"})) for x in (a, b, b, a)]
    assert [d.decision for d in resolved] == ["grouped", "sent", "deduplicated", "deduplicated"]
    assert resolved[2].reason == "resolve already sent"
    assert [b["event_action"] for b in services.bodies(PD_PATH)] == ["trigger", "resolve"]
    assert router.open_groups() == []
    # Firing again after the resolve is a new incident episode: it notifies.
    assert router.handle(a).decision == "sent"
    assert [b["event_action"] for b in services.bodies(PD_PATH)] == ["trigger", "resolve", "trigger"]


def test_a_resolve_for_nothing_sent_is_not_posted(services: FakeServices, router: AlertRouter) -> None:
    d = router.handle(QUARANTINE.model_copy(update={"status": "resolved"}))
    assert (d.decision, d.reason) == ("deduplicated", "nothing was sent for this group")
    assert services.received == []


def test_rate_limit_per_route_is_a_token_bucket(services: FakeServices, clock: Clock) -> None:
    limits = {"page": RouteLimit(per_hour=2, burst=2), "slack": RouteLimit(per_hour=60, burst=1), "log": None}
    router = AlertRouter(_config(services, limits=limits), clock=clock)
    pages = [QUARANTINE.model_copy(update={"labels": {"pipeline": "ingestion", "dataset": f"ds{i}"}}) for i in range(5)]
    assert [router.handle(a).decision for a in pages] == ["sent", "sent", "rate_limited", "rate_limited", "rate_limited"]
    # Slack has its own bucket.
    warn = Alert(name="DataopsCheckFailed", severity="warning", summary="check fails", labels={"dataset": "x"})
    assert router.handle(warn).decision == "sent"
    # A rate-limited group is not notified: a repeat of it is still limited, not deduplicated.
    clock.advance(minutes=10)
    assert router.handle(pages[2]).decision == "rate_limited"
    clock.advance(minutes=20)  # 30 minutes at 2 an hour: one token back
    assert [router.handle(a).decision for a in pages[2:]] == ["sent", "rate_limited", "rate_limited"]
    # Resolves never wait for a token; resolving a group never notified posts nothing.
    resolved = [router.handle(a.model_copy(update={"status": "resolved"})) for a in pages]
    assert [d.decision for d in resolved] == ["sent", "sent", "sent", "deduplicated", "deduplicated"]
    actions = [b["event_action"] for b in services.bodies(PD_PATH)]
    assert actions == ["trigger"] * 3 + ["resolve"] * 3
    assert router.stats()["page"] == {"sent": 6, "grouped": 0, "deduplicated": 2, "rate_limited": 6, "failed": 0}
    assert router.stats()["slack"]["sent"] == 1


def test_a_day_of_repeating_alerts_is_a_few_dozen_notifications(services: FakeServices, clock: Clock) -> None:
    # 30 incidents in a day, each re-sent every minute for an hour by the evaluator: 1,800 alerts.
    router = AlertRouter(_config(services), clock=clock)
    for i in range(30):
        alert = Alert(name=f"A{i % 6}", severity="critical" if i % 3 == 0 else "warning", summary="s", labels={"dataset": f"d{i}"})
        for minute in range(60):
            clock.now = T0 + timedelta(minutes=i * 45 + minute)
            router.handle(alert)
        router.handle(alert.model_copy(update={"status": "resolved"}))
    stats = router.stats()
    triggers = [b for b in services.bodies(PD_PATH) if b["event_action"] == "trigger"] + [
        b for b in services.bodies(SLACK_PATH) if not b["text"].startswith("[RESOLVED]")
    ]
    assert len(triggers) == 30  # within the 10–50 a day the architecture asks for
    assert stats["page"]["deduplicated"] + stats["slack"]["deduplicated"] == 30 * 59
    assert stats["page"]["rate_limited"] == stats["slack"]["rate_limited"] == 0


def test_an_alert_storm_is_capped_by_the_default_limits(services: FakeServices, clock: Clock) -> None:
    # 500 distinct critical incidents in one hour: the page route sends its burst plus its hourly rate.
    router = AlertRouter(_config(services), clock=clock)
    for i in range(500):
        clock.now = T0 + timedelta(seconds=i * 7)
        router.handle(Alert(name="DataopsRunFailed", severity="critical", summary="s", labels={"dataset": f"d{i}"}))
    stats = router.stats()["page"]
    assert stats["sent"] == 5 + 1  # burst 5, then 2 an hour: one more token within the hour
    assert stats["rate_limited"] == 494


def test_routes_fall_back_when_not_configured(services: FakeServices, clock: Clock) -> None:
    slack_only = AlertRouter(AlertRoutingConfig(slack_webhook_url=services.url + SLACK_PATH), clock=clock)
    assert slack_only.route_of("critical") == "slack"
    assert slack_only.handle(QUARANTINE).route == "slack"
    assert services.bodies(SLACK_PATH)[0]["text"].startswith("[CRITICAL] DataopsQuarantineRatioCritical")
    nothing = AlertRouter(AlertRoutingConfig(), clock=clock)
    assert [nothing.route_of(s) for s in ("critical", "warning", "info")] == ["log", "log", "log"]
    assert nothing.handle(QUARANTINE).decision == "sent" and len(nothing.report) == 1
    assert len(services.received) == 1


def test_delivery_failures_are_storage_errors_and_retried(services: FakeServices, router: AlertRouter) -> None:
    services.fail_with = 400
    with pytest.raises(StorageError) as info:
        router.handle(QUARANTINE)
    message = str(info.value)
    assert message == f"PagerDuty event to {services.url} answered 400: invalid_payload"
    assert router.decisions[-1].decision == "failed" and router.stats()["page"]["failed"] == 1
    warn = Alert(name="W", severity="warning", summary="s")
    with pytest.raises(StorageError) as info:
        router.handle(warn)
    assert "s3cr3t" not in str(info.value) and "\n" not in str(info.value)
    services.fail_with = None
    # Nothing was notified, so the next firing sends (and the failed attempt cost no token).
    assert router.handle(QUARANTINE).decision == "sent"
    assert router.handle(warn).decision == "sent"


def test_unreachable_service_is_a_storage_error(clock: Clock) -> None:
    cfg = AlertRoutingConfig(slack_webhook_url="http://127.0.0.1:9/hooks/secret", timeout_s=2)
    with AlertRouter(cfg, clock=clock) as router, pytest.raises(StorageError, match=r"Slack message to http://127.0.0.1:9 failed: ConnectError"):
        router.handle(Alert(name="W", summary="s"))


def test_alertmanager_notifications_are_routed_by_group(services: FakeServices, router: AlertRouter, clock: Clock) -> None:
    grouped = load_alertmanager_payload(FIXTURES / "grouped.json")
    decisions = router.handle_payload(grouped)
    # Two firing drift alerts of one group: one Slack message; the resolved member was never firing here.
    assert [d.decision for d in decisions] == ["sent", "grouped", "grouped"]
    assert {d.group_key for d in decisions} == {grouped.group_key}
    (message,) = services.bodies(SLACK_PATH)
    assert message["text"] == "[WARNING] DataopsDriftPsiHigh: drift on street_images brightness (PSI 0.183)"
    assert "2 alerts in this group" in message["blocks"][-1]["elements"][0]["text"]
    clock.advance(minutes=1)
    assert [d.decision for d in router.handle_payload(grouped)] == ["deduplicated", "deduplicated", "grouped"]

    firing = load_alertmanager_payload(FIXTURES / "firing.json")
    resolved = load_alertmanager_payload(FIXTURES / "resolved.json")
    assert [d.decision for d in router.handle_payload(firing)] == ["sent"]
    assert [d.decision for d in router.handle_payload(resolved)] == ["sent"]
    assert [d.decision for d in router.handle_payload(resolved)] == ["deduplicated"]
    trigger, resolve = services.bodies(PD_PATH)
    assert trigger["dedup_key"] == resolve["dedup_key"] == dedup_key(firing.group_key)
    assert trigger["payload"]["custom_details"]["generator_url"].startswith("http://prometheus:9090/graph")
    assert trigger["payload"]["timestamp"] == "2024-11-05T09:14:37.812000+00:00"


def test_decisions_are_counted_kept_and_exported(services: FakeServices, clock: Clock) -> None:
    registry = CollectorRegistry()
    router = AlertRouter(_config(services), clock=clock, registry=registry)
    router.handle(QUARANTINE)
    router.handle(QUARANTINE)
    assert [(d.route, d.decision) for d in router.decisions] == [("page", "sent"), ("page", "deduplicated")]
    assert registry.get_sample_value("dataops_alert_decisions_total", {"route": "page", "decision": "sent"}) == 1
    assert registry.get_sample_value("dataops_alert_decisions_total", {"route": "page", "decision": "deduplicated"}) == 1
    assert router.decisions[0].at == T0 and router.decisions[0].labels == QUARANTINE.labels


def test_idle_groups_are_forgotten(services: FakeServices, router: AlertRouter, clock: Clock) -> None:
    assert router.handle(QUARANTINE).decision == "sent"
    clock.advance(hours=3)
    assert router.handle(QUARANTINE).decision == "deduplicated"
    clock.advance(hours=25)
    assert router.open_groups() == [GROUP]  # forgotten lazily, on the next alert
    assert router.handle(QUARANTINE).decision == "sent"


def test_token_bucket() -> None:
    bucket = TokenBucket(per_hour=6, burst=2, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert not bucket.take(599.0)
    assert bucket.take(600.0)  # one token every 10 minutes
    assert bucket.available(10 * 3600) == 2.0  # never above the burst
    bucket.take(10 * 3600)
    bucket.refund()
    assert bucket.available(10 * 3600) == 2.0


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError):
        AlertRoutingConfig(limits={"page": RouteLimit(per_hour=0, burst=1)})
    with pytest.raises(ValueError):
        AlertRoutingConfig(repeat_interval_s=0)
    with pytest.raises(ValueError):
        Alert(name="x", severity="urgent")  # type: ignore[arg-type]
