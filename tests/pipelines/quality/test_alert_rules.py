"""The Prometheus alerting rules: their shape, their thresholds, that
promtool accepts them, and (promtool's rule unit tests) that each fires on
the series it is about and stays quiet on the others."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from app.cli._alerts import register
from pipelines.quality._prom_rules import AlertRuleConfig, alert_rules, render_rules, write_rules

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian's prometheus package)")

EXPECTED = {
    "DataopsRunFailed": "critical",
    "DataopsStageFailing": "warning",
    "DataopsNoRecordsIngested": "warning",
    "DataopsExporterDown": "critical",
    "DataopsBatchSizeChanged": "info",
    "DataopsQuarantineRatioCritical": "critical",
    "DataopsQuarantineRatioHigh": "warning",
    "DataopsDuplicateRatioHigh": "warning",
    "DataopsDriftPsiCritical": "critical",
    "DataopsDriftPsiHigh": "warning",
    "DataopsCheckFailedCritical": "critical",
    "DataopsCheckFailed": "warning",
}


def _rules(cfg: AlertRuleConfig | None = None) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in alert_rules(cfg)["groups"] for r in g["rules"]}


def test_every_rule_has_expr_for_severity_and_annotations() -> None:
    rules = _rules()
    assert {name: r["labels"]["severity"] for name, r in rules.items()} == EXPECTED
    for rule in rules.values():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
        assert rule["expr"].strip() and rule["for"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_thresholds_come_from_the_config() -> None:
    cfg = AlertRuleConfig(
        window="30m", min_records=500, quarantine_ratio_warning=0.1, quarantine_ratio_critical=0.4,
        stale_hours=12, psi_critical=0.3, job="ingest", runbook_url="https://runbooks.example/dataops/",
        extra_labels={"team": "data-platform"},
    )
    rules = _rules(cfg)
    quarantine = rules["DataopsQuarantineRatioHigh"]["expr"]
    assert "increase(dataops_records_quarantined_total[30m])" in quarantine
    assert "> 0.1 <= 0.4" in quarantine and ">= 500" in quarantine
    assert "> 0.4" in rules["DataopsQuarantineRatioCritical"]["expr"]
    assert "[12h]" in rules["DataopsNoRecordsIngested"]["expr"] and "offset 12h" in rules["DataopsNoRecordsIngested"]["expr"]
    assert rules["DataopsDriftPsiCritical"]["expr"] == "dataops_drift_psi > 0.3"
    assert rules["DataopsExporterDown"]["expr"] == 'up{job="ingest"} == 0'
    assert rules["DataopsRunFailed"]["labels"] == {"team": "data-platform", "severity": "critical"}
    assert rules["DataopsRunFailed"]["annotations"]["runbook_url"] == "https://runbooks.example/dataops/DataopsRunFailed"


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError):
        AlertRuleConfig(window="15 minutes")
    with pytest.raises(ValueError):
        AlertRuleConfig(quarantine_ratio_warning=1.5)


def test_rendered_yaml_round_trips(tmp_path: Path) -> None:
    text = render_rules()
    assert yaml.safe_load(text) == alert_rules()
    assert "expr: |" in text  # long expressions stay readable
    out = write_rules(tmp_path / "deep" / "dataops.rules.yml")
    assert yaml.safe_load(out.read_text()) == alert_rules()


def test_cli_writes_rules(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    out = tmp_path / "rules.yml"
    result = CliRunner().invoke(app, ["alerts", "rules", "--out", str(out), "--stale-hours", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote 12 rules" in result.output
    rules = {r["alert"]: r for g in yaml.safe_load(out.read_text())["groups"] for r in g["rules"]}
    assert "[3h]" in rules["DataopsNoRecordsIngested"]["expr"]
    stdout = CliRunner().invoke(app, ["alerts", "rules"])
    assert stdout.exit_code == 0 and yaml.safe_load(stdout.stdout) == alert_rules()
    bad = CliRunner().invoke(app, ["alerts", "rules", "--window", "soon"])
    assert bad.exit_code != 0


@needs_promtool
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    path = write_rules(tmp_path / "rules.yml")
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)  # type: ignore[list-item]
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in done.stdout


def _alert(labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    return {"exp_labels": labels, "exp_annotations": {"summary": summary, "description": description}}


# Series at one sample a minute: "0+100x40" grows by 100 a minute for 40 minutes.
SERIES = [
    ('dataops_run_status{pipeline="ingestion",dataset="d",status="failed"}', "0 0 1x40"),
    ('dataops_run_status{pipeline="ingestion",dataset="ok",status="failed"}', "0x40"),
    # d: 30 % quarantined → critical; warn: 10 % → warning; ok: 1 %; quiet: 100 % of too few records.
    ('dataops_records_in_total{pipeline="ingestion",dataset="d"}', "0+100x40"),
    ('dataops_records_quarantined_total{pipeline="ingestion",dataset="d",reason="decode_error"}', "0+20x40"),
    ('dataops_records_quarantined_total{pipeline="ingestion",dataset="d",reason="too_small"}', "0+10x40"),
    ('dataops_records_in_total{pipeline="ingestion",dataset="warn"}', "0+100x40"),
    ('dataops_records_quarantined_total{pipeline="ingestion",dataset="warn",reason="decode_error"}', "0+10x40"),
    ('dataops_records_in_total{pipeline="ingestion",dataset="ok"}', "0+100x40"),
    ('dataops_records_quarantined_total{pipeline="ingestion",dataset="ok",reason="decode_error"}', "0+1x40"),
    ('dataops_records_duplicate_total{pipeline="ingestion",dataset="ok",kind="near"}', "0+60x40"),
    ('dataops_records_in_total{pipeline="ingestion",dataset="quiet"}', "0+1x40"),
    ('dataops_records_quarantined_total{pipeline="ingestion",dataset="quiet",reason="decode_error"}', "0+1x40"),
    ('dataops_stage_failures_total{pipeline="ingestion",stage="decode"}', "0+1x40"),
    ('dataops_stage_failures_total{pipeline="ingestion",stage="write"}', "0x40"),
    ('dataops_drift_psi{dataset="d",column="brightness"}', "0.31x40"),
    ('dataops_drift_psi{dataset="d",column="width"}', "0.15x40"),
    ('dataops_drift_psi{dataset="d",column="height"}', "0.02x40"),
    ('dataops_check_failed{dataset="d",check="ids_unique",severity="critical"}', "1x40"),
    ('dataops_check_failed{dataset="d",check="caption_len",severity="warning"}', "1x40"),
    ('dataops_check_failed{dataset="d",check="rows",severity="warning"}', "0x40"),
    ('up{job="dataops",instance="w1:9464"}', "0x40"),
    ('up{job="dataops",instance="w2:9464"}', "1x40"),
    ('dataops_batch_size{pipeline="ingestion",dataset="d"}', "64x10 32x30"),
]

EXPECTED_AT_30M: dict[str, list[dict[str, Any]]] = {
    "DataopsRunFailed": [
        _alert(
            {"severity": "critical", "pipeline": "ingestion", "dataset": "d"},
            "ingestion run on d failed",
            "The latest ingestion run on dataset d ended failed; nothing new is being written until it is fixed and rerun.",
        )
    ],
    "DataopsQuarantineRatioCritical": [
        _alert(
            {"severity": "critical", "pipeline": "ingestion", "dataset": "d"},
            "ingestion quarantines 30% of d",
            "30% of the records read in the last 15m were quarantined (critical above 20%).",
        )
    ],
    "DataopsQuarantineRatioHigh": [
        _alert(
            {"severity": "warning", "pipeline": "ingestion", "dataset": "warn"},
            "ingestion quarantines 10% of warn",
            "10% of the records read in the last 15m were quarantined (warning above 5%).",
        )
    ],
    "DataopsDuplicateRatioHigh": [
        _alert(
            {"severity": "warning", "pipeline": "ingestion", "dataset": "ok"},
            "60% of ok are duplicates",
            "60% of the records read in the last 15m were exact or near duplicates (warning above 50%): "
            "a source may be replaying.",
        )
    ],
    "DataopsStageFailing": [
        _alert(
            {"severity": "warning", "pipeline": "ingestion", "stage": "decode"},
            "ingestion stage decode is failing",
            "15 failed attempts of stage decode in the last 15m (threshold 3).",
        )
    ],
    "DataopsDriftPsiCritical": [
        _alert(
            {"severity": "critical", "dataset": "d", "column": "brightness"},
            "major drift on d brightness (PSI 0.310)",
            "PSI 0.310 against the reference is above 0.25: the distribution changed materially.",
        )
    ],
    "DataopsDriftPsiHigh": [
        _alert(
            {"severity": "warning", "dataset": "d", "column": "width"},
            "drift on d width (PSI 0.150)",
            "PSI 0.150 against the reference is above 0.1 (critical above 0.25).",
        )
    ],
    "DataopsCheckFailedCritical": [
        _alert(
            {"severity": "critical", "dataset": "d", "check": "ids_unique"},
            "critical check ids_unique fails on d",
            "Data-quality check ids_unique (critical) fails on dataset d.",
        )
    ],
    "DataopsCheckFailed": [
        _alert(
            {"severity": "warning", "dataset": "d", "check": "caption_len"},
            "check caption_len fails on d",
            "Data-quality check caption_len fails on dataset d.",
        )
    ],
    "DataopsExporterDown": [
        _alert(
            {"severity": "critical", "job": "dataops", "instance": "w1:9464"},
            "dataops exporter w1:9464 is down",
            "Prometheus could not scrape w1:9464 (job dataops) for 5m: the pipelines there are down or unobserved.",
        )
    ],
    "DataopsBatchSizeChanged": [
        _alert(
            {"severity": "info", "pipeline": "ingestion", "dataset": "d"},
            "ingestion batch size changed on d",
            "The batch size of ingestion on d changed 1 time(s) in the last hour.",
        )
    ],
    "DataopsNoRecordsIngested": [],
}


@needs_promtool
def test_rules_fire_on_what_they_are_about(tmp_path: Path) -> None:
    write_rules(tmp_path / "rules.yml")
    stale = [
        # Read until 20m, then nothing for 7h: stale once 6h pass without a record.
        ('dataops_records_in_total{pipeline="ingestion",dataset="stale"}', "0+10x20 200x420"),
        ('dataops_records_in_total{pipeline="ingestion",dataset="busy"}', "0+10x440"),
    ]
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in SERIES],
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": name, "exp_alerts": alerts}
                    for name, alerts in EXPECTED_AT_30M.items()
                ],
            },
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in stale],
                "alert_rule_test": [
                    {"eval_time": "5h", "alertname": "DataopsNoRecordsIngested", "exp_alerts": []},
                    {
                        "eval_time": "7h",
                        "alertname": "DataopsNoRecordsIngested",
                        "exp_alerts": [
                            _alert(
                                {"severity": "warning", "pipeline": "ingestion", "dataset": "stale"},
                                "ingestion read nothing for stale in 6h",
                                "No record was read for dataset stale in the last 6h: the source may be dry, "
                                "unreachable or the pipeline stopped.",
                            )
                        ],
                    },
                ],
            },
        ],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120  # type: ignore[list-item]
    )
    assert done.returncode == 0, done.stdout + done.stderr
