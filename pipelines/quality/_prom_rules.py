"""Prometheus alerting rules for the pipelines' metrics.

``dataops alerts rules`` writes them; Prometheus evaluates them and hands
firing alerts to Alertmanager, whose webhook comes back to the daemon
(:mod:`pipelines.quality._alertmanager`). Severities follow the architecture:
critical pages (a pipeline down, major drift), warning goes to Slack (minor
drift, quality degradation), info is for dashboards and reports.

Ratios compare ``increase()`` of two counters over one window and only alert
once the window saw ``min_records`` records, so a handful of bad files on a
quiet pipeline do not page anyone. Warning rules stop where the matching
critical rule starts, so one condition raises one alert at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from app.errors import StorageError

__all__ = ["AlertRuleConfig", "alert_rules", "render_rules", "write_rules"]

Duration = str  # a Prometheus duration: 30s, 15m, 6h, 1d
_DURATION = r"^[0-9]+(ms|s|m|h|d|w|y)$"
_BY = "pipeline, dataset"


class AlertRuleConfig(BaseModel):
    """Thresholds of the generated rules; the defaults are the documented ones."""

    model_config = ConfigDict(extra="forbid")

    job: str = Field(default="dataops", description="Scrape job name of the pipelines' exporters.")
    window: Duration = Field(default="15m", pattern=_DURATION, description="Window of the ratio and failure rules.")
    min_records: int = Field(default=100, ge=0, description="Records a window must see before a ratio alerts.")
    quarantine_ratio_warning: float = Field(default=0.05, gt=0, le=1)
    quarantine_ratio_critical: float = Field(default=0.20, gt=0, le=1)
    duplicate_ratio_warning: float = Field(default=0.50, gt=0, le=1)
    stage_failures: int = Field(default=3, ge=1, description="Failed stage attempts per window that alert.")
    stale_hours: int = Field(default=6, ge=1, description="Hours without a record read before a pipeline is stale.")
    psi_warning: float = Field(default=0.10, gt=0)
    psi_critical: float = Field(default=0.25, gt=0)
    exporter_down_for: Duration = Field(default="5m", pattern=_DURATION)
    runbook_url: str | None = Field(default=None, description="Added to every rule's annotations when set.")
    extra_labels: dict[str, str] = Field(default_factory=dict, description="Added to every rule's labels.")


Severity = Literal["critical", "warning", "info"]


def _rule(
    cfg: AlertRuleConfig,
    name: str,
    expr: str,
    severity: Severity,
    summary: str,
    description: str,
    for_: Duration = "0m",
) -> dict[str, Any]:
    annotations = {"summary": summary, "description": description}
    if cfg.runbook_url:
        annotations["runbook_url"] = f"{cfg.runbook_url.rstrip('/')}/{name}"
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {**cfg.extra_labels, "severity": severity},
        "annotations": annotations,
    }


def _ratio(numerator: str, comparison: str, cfg: AlertRuleConfig) -> str:
    """``numerator / records_in`` per pipeline and dataset over the window,
    filtered by ``comparison``, only where the window saw ``min_records``."""
    w = cfg.window
    records_in = f"sum by ({_BY}) (increase(dataops_records_in_total[{w}]))"
    return (
        f"(\n  sum by ({_BY}) (increase({numerator}[{w}]))\n/\n  {records_in}\n) {comparison}"
        f"\nand on ({_BY})\n  {records_in} >= {cfg.min_records}"
    )


def _pipeline_rules(cfg: AlertRuleConfig) -> list[dict[str, Any]]:
    w, h = cfg.window, f"{cfg.stale_hours}h"
    return [
        _rule(
            cfg,
            "DataopsRunFailed",
            f'max by ({_BY}) (dataops_run_status{{status="failed"}}) == 1',
            "critical",
            "{{ $labels.pipeline }} run on {{ $labels.dataset }} failed",
            "The latest {{ $labels.pipeline }} run on dataset {{ $labels.dataset }} ended failed; "
            "nothing new is being written until it is fixed and rerun.",
        ),
        _rule(
            cfg,
            "DataopsStageFailing",
            f"sum by (pipeline, stage) (increase(dataops_stage_failures_total[{w}])) > {cfg.stage_failures}",
            "warning",
            "{{ $labels.pipeline }} stage {{ $labels.stage }} is failing",
            f"{{{{ $value | humanize }}}} failed attempts of stage {{{{ $labels.stage }}}} in the last {w} "
            f"(threshold {cfg.stage_failures}).",
            for_="5m",
        ),
        _rule(
            cfg,
            "DataopsNoRecordsIngested",
            f"sum by ({_BY}) (increase(dataops_records_in_total[{h}])) == 0"
            f"\nand on ({_BY})\n  group by ({_BY}) (dataops_records_in_total offset {h})",
            "warning",
            "{{ $labels.pipeline }} read nothing for {{ $labels.dataset }} in " + h,
            f"No record was read for dataset {{{{ $labels.dataset }}}} in the last {h}: "
            "the source may be dry, unreachable or the pipeline stopped.",
            for_="10m",
        ),
        _rule(
            cfg,
            "DataopsExporterDown",
            f'up{{job="{cfg.job}"}} == 0',
            "critical",
            "dataops exporter {{ $labels.instance }} is down",
            f"Prometheus could not scrape {{{{ $labels.instance }}}} (job {cfg.job}) for {cfg.exporter_down_for}: "
            "the pipelines there are down or unobserved.",
            for_=cfg.exporter_down_for,
        ),
        _rule(
            cfg,
            "DataopsBatchSizeChanged",
            "changes(dataops_batch_size[1h]) > 0",
            "info",
            "{{ $labels.pipeline }} batch size changed on {{ $labels.dataset }}",
            "The batch size of {{ $labels.pipeline }} on {{ $labels.dataset }} changed "
            "{{ $value }} time(s) in the last hour.",
        ),
    ]


def _quality_rules(cfg: AlertRuleConfig) -> list[dict[str, Any]]:
    w = cfg.window
    quarantined, duplicate = "dataops_records_quarantined_total", "dataops_records_duplicate_total"
    qw, qc = cfg.quarantine_ratio_warning, cfg.quarantine_ratio_critical
    pw, pc = cfg.psi_warning, cfg.psi_critical
    return [
        _rule(
            cfg,
            "DataopsQuarantineRatioCritical",
            _ratio(quarantined, f"> {qc}", cfg),
            "critical",
            "{{ $labels.pipeline }} quarantines {{ $value | humanizePercentage }} of {{ $labels.dataset }}",
            f"{{{{ $value | humanizePercentage }}}} of the records read in the last {w} were quarantined "
            f"(critical above {qc:.0%}).",
            for_="5m",
        ),
        _rule(
            cfg,
            "DataopsQuarantineRatioHigh",
            _ratio(quarantined, f"> {qw} <= {qc}", cfg),
            "warning",
            "{{ $labels.pipeline }} quarantines {{ $value | humanizePercentage }} of {{ $labels.dataset }}",
            f"{{{{ $value | humanizePercentage }}}} of the records read in the last {w} were quarantined "
            f"(warning above {qw:.0%}).",
            for_="5m",
        ),
        _rule(
            cfg,
            "DataopsDuplicateRatioHigh",
            _ratio(duplicate, f"> {cfg.duplicate_ratio_warning}", cfg),
            "warning",
            "{{ $value | humanizePercentage }} of {{ $labels.dataset }} are duplicates",
            f"{{{{ $value | humanizePercentage }}}} of the records read in the last {w} were exact or near "
            f"duplicates (warning above {cfg.duplicate_ratio_warning:.0%}): a source may be replaying.",
            for_="5m",
        ),
        _rule(
            cfg,
            "DataopsDriftPsiCritical",
            f"dataops_drift_psi > {pc}",
            "critical",
            "major drift on {{ $labels.dataset }} {{ $labels.column }} (PSI {{ $value | printf \"%.3f\" }})",
            f"PSI {{{{ $value | printf \"%.3f\" }}}} against the reference is above {pc}: "
            "the distribution changed materially.",
        ),
        _rule(
            cfg,
            "DataopsDriftPsiHigh",
            f"dataops_drift_psi > {pw} <= {pc}",
            "warning",
            "drift on {{ $labels.dataset }} {{ $labels.column }} (PSI {{ $value | printf \"%.3f\" }})",
            f"PSI {{{{ $value | printf \"%.3f\" }}}} against the reference is above {pw} (critical above {pc}).",
        ),
        _rule(
            cfg,
            "DataopsCheckFailedCritical",
            'dataops_check_failed{severity="critical"} > 0',
            "critical",
            "critical check {{ $labels.check }} fails on {{ $labels.dataset }}",
            "Data-quality check {{ $labels.check }} (critical) fails on dataset {{ $labels.dataset }}.",
        ),
        _rule(
            cfg,
            "DataopsCheckFailed",
            'dataops_check_failed{severity!="critical"} > 0',
            "warning",
            "check {{ $labels.check }} fails on {{ $labels.dataset }}",
            "Data-quality check {{ $labels.check }} fails on dataset {{ $labels.dataset }}.",
        ),
    ]


def alert_rules(config: AlertRuleConfig | None = None) -> dict[str, Any]:
    """The rules file as data: ``{"groups": [{"name", "rules": [...]}]}``."""
    cfg = config or AlertRuleConfig()
    return {
        "groups": [
            {"name": "dataops.pipelines", "rules": _pipeline_rules(cfg)},
            {"name": "dataops.quality", "rules": _quality_rules(cfg)},
        ]
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the longer expressions) as block scalars."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_rules(config: AlertRuleConfig | None = None) -> str:
    """The rules file as Prometheus reads it (``rule_files:``)."""
    header = "# Prometheus alerting rules for dataops pipelines; generated by `dataops alerts rules`.\n"
    return header + yaml.dump(alert_rules(config), Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def write_rules(path: Path, config: AlertRuleConfig | None = None) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_rules(config), encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write alert rules to {path}: {exc.strerror or exc}") from None
    return path
