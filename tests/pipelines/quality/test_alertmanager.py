"""Alertmanager's webhook payload (version 4), parsed from real-format
notifications and turned into the agents' signals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli._alerts import register
from app.errors import InputError
from pipelines.quality import (
    AlertmanagerPayload,
    load_alertmanager_payload,
    parse_alertmanager_payload,
    payload_signals,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "alertmanager"


def _load(name: str) -> AlertmanagerPayload:
    return load_alertmanager_payload(FIXTURES / name)


def test_firing() -> None:
    p = _load("firing.json")
    assert (p.version, p.status, p.receiver, p.truncated_alerts) == ("4", "firing", "dataops-daemon", 0)
    assert p.group_key == '{}/{severity="critical"}:{alertname="DataopsQuarantineRatioCritical", pipeline="ingestion"}'
    assert p.group_labels == {"alertname": "DataopsQuarantineRatioCritical", "pipeline": "ingestion"}
    assert p.common_labels["severity"] == "critical" and p.external_url == "http://alertmanager:9093"
    (a,) = p.alerts
    assert a.status == "firing" and a.ends_at is None  # Go's zero time means "not ended"
    assert a.starts_at == datetime(2024, 11, 5, 9, 14, 37, 812000, tzinfo=UTC)
    assert a.fingerprint == "8c1b9d2e0f3a4b57" and a.generator_url.startswith("http://prometheus:9090/graph?g0.expr=")
    assert a.name == "DataopsQuarantineRatioCritical" and a.severity == "critical"

    (s,) = payload_signals(p, t=12.5)
    assert s.kind == "event" and s.type == "alert_firing" and s.t == 12.5
    assert s.name == "DataopsQuarantineRatioCritical" and s.level == "error"
    assert (s.pipeline, s.dataset) == ("ingestion", "street_images")
    assert s.labels == a.labels and s.ts == a.starts_at
    assert s.message == (
        "ingestion quarantines 31.25% of street_images: "
        "31.25% of the records read in the last 15m were quarantined (critical above 20%)."
    )
    assert s.failing and s.error == "DataopsQuarantineRatioCritical: ingestion quarantines 31.25% of street_images"
    extra = s.model_extra or {}
    assert extra["fingerprint"] == "8c1b9d2e0f3a4b57" and extra["group_key"] == p.group_key
    assert extra["severity"] == "critical" and extra["alertname"] == s.name


def test_resolved() -> None:
    p = _load("resolved.json")
    assert p.status == "resolved" and not p.firing and len(p.resolved) == 1
    (a,) = p.alerts
    assert a.ends_at == datetime(2024, 11, 5, 9, 52, 7, 812000, tzinfo=UTC)
    (s,) = payload_signals(p)
    assert s.type == "alert_resolved" and s.ts == a.ends_at
    assert not s.failing and s.error is None and s.level == "error"


def test_grouped_alerts_keep_their_own_status() -> None:
    p = _load("grouped.json")
    assert p.status == "firing" and len(p.alerts) == 3 and p.common_annotations == {}
    assert [a.status for a in p.alerts] == ["firing", "firing", "resolved"]
    assert [a.labels["column"] for a in p.firing] == ["brightness", "width"]
    # RFC 3339 with nanoseconds, as Alertmanager writes them.
    assert p.alerts[0].starts_at == datetime(2024, 11, 5, 10, 0, 12, 34518, tzinfo=UTC)
    signals = payload_signals(p)
    assert [s.type for s in signals] == ["alert_firing", "alert_firing", "alert_resolved"]
    assert {s.level for s in signals} == {"warning"}
    assert [s.failing for s in signals] == [True, True, False]
    assert len({(s.model_extra or {})["fingerprint"] for s in signals}) == 3


def test_truncated() -> None:
    p = _load("truncated.json")
    assert p.truncated_alerts == 3 and len(p.alerts) == 2 and p.total_alerts == 5
    assert [s.labels["check"] for s in payload_signals(p)] == ["caption_not_null", "label_in_set"]


def test_info_alerts_are_not_symptoms() -> None:
    raw = json.loads((FIXTURES / "firing.json").read_text())
    raw["alerts"][0]["labels"]["severity"] = "info"
    (s,) = payload_signals(parse_alertmanager_payload(raw))
    assert s.level == "info" and not s.failing


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "must be a JSON object"),
        ({"version": "3"}, "version"),
        ({**json.loads((FIXTURES / "firing.json").read_text()), "status": "pending"}, "status"),
        ({**json.loads((FIXTURES / "firing.json").read_text()), "alerts": [{"status": "firing"}]}, "alerts.0"),
    ],
)
def test_bad_payloads_are_one_line_input_errors(body: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_alertmanager_payload(body)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_every_fixture_round_trips_by_alias() -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        raw = json.loads(path.read_text())
        dumped = load_alertmanager_payload(path).model_dump(mode="json", by_alias=True)
        assert set(dumped) == set(raw), path.name
        assert [set(a) for a in dumped["alerts"]] == [set(a) for a in raw["alerts"]], path.name


def test_cli_shows_the_signals() -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["alerts", "parse", str(FIXTURES / "grouped.json")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "firing: 3 alert(s)" in result.output and "drift on street_images width (PSI 0.141)" in result.output
    as_json = CliRunner().invoke(app, ["alerts", "parse", str(FIXTURES / "truncated.json"), "--json"])
    assert [s["type"] for s in json.loads(as_json.stdout)] == ["alert_firing", "alert_firing"]
