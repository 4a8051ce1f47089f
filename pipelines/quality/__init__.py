"""Data quality: check suites run on dataset snapshots (and, alongside, drift
detection). Results are stored and emitted as run events, the monitor's signals."""

from pipelines.quality._alertmanager import (
    SEVERITY_LEVELS,
    AlertmanagerAlert,
    AlertmanagerPayload,
    alert_signal,
    load_alertmanager_payload,
    parse_alertmanager_payload,
    payload_signals,
)
from pipelines.quality._alerts import (
    DECISIONS,
    ROUTES,
    Alert,
    AlertDecision,
    AlertRouter,
    AlertRoutingConfig,
    RouteLimit,
)
from pipelines.quality._alerts_exporter import MetricsServer, serve_metrics
from pipelines.quality._alerts_notify import TokenBucket, dedup_key, pagerduty_event, slack_message
from pipelines.quality._check_store import (
    LEVEL_BY_SEVERITY,
    CheckResultRow,
    CheckSuiteRow,
    check_after_write,
    list_results,
    record_results,
    register_suite,
    remove_suite,
    run_dataset_checks,
    suite_for,
)
from pipelines.quality._check_types import (
    CHECK_TYPES,
    CheckSpec,
    FreshnessCheck,
    InSetCheck,
    LengthCheck,
    NotNullCheck,
    NullRateCheck,
    RangeCheck,
    RegexCheck,
    RowCountCheck,
    SchemaCheck,
    SqlCheck,
    SqlExpect,
    UniqueCheck,
)
from pipelines.quality._checks import read_parquet, run_check, run_suite
from pipelines.quality._drift import column_kind, detect_drift
from pipelines.quality._drift_io import as_table, expand_metadata, load_frame, parse_spec, prepare_frame
from pipelines.quality._drift_models import ColumnDrift, DriftConfig, DriftReport
from pipelines.quality._drift_signals import DriftGauges, drift_after_write, drift_gauges, record_drift
from pipelines.quality._drift_stats import KSResult, ks_test, psi, psi_categorical, psi_numeric
from pipelines.quality._prom_rules import AlertRuleConfig, alert_rules, render_rules, write_rules
from pipelines.quality._report import render_html, write_html
from pipelines.quality._results import CheckResult, SuiteResult
from pipelines.quality._suite import DEFAULT_SUITE_YAML, Suite, default_suite, load_suite, parse_suite

__all__ = [
    # checks
    "CHECK_TYPES",
    "DEFAULT_SUITE_YAML",
    "CheckResult",
    "CheckResultRow",
    "CheckSpec",
    "CheckSuiteRow",
    "FreshnessCheck",
    "InSetCheck",
    "LEVEL_BY_SEVERITY",
    "LengthCheck",
    "NotNullCheck",
    "NullRateCheck",
    "RangeCheck",
    "RegexCheck",
    "RowCountCheck",
    "SchemaCheck",
    "SqlCheck",
    "SqlExpect",
    "Suite",
    "SuiteResult",
    "UniqueCheck",
    "check_after_write",
    "default_suite",
    "list_results",
    "load_suite",
    "parse_suite",
    "read_parquet",
    "record_results",
    "register_suite",
    "remove_suite",
    "run_check",
    "run_dataset_checks",
    "run_suite",
    "suite_for",
    # metrics and alerts
    "DECISIONS",
    "ROUTES",
    "SEVERITY_LEVELS",
    "Alert",
    "AlertDecision",
    "AlertRouter",
    "AlertRoutingConfig",
    "AlertRuleConfig",
    "AlertmanagerAlert",
    "AlertmanagerPayload",
    "MetricsServer",
    "RouteLimit",
    "TokenBucket",
    "alert_rules",
    "alert_signal",
    "dedup_key",
    "load_alertmanager_payload",
    "pagerduty_event",
    "parse_alertmanager_payload",
    "payload_signals",
    "render_rules",
    "serve_metrics",
    "slack_message",
    "write_rules",
    # drift
    "ColumnDrift",
    "DriftConfig",
    "DriftGauges",
    "DriftReport",
    "KSResult",
    "as_table",
    "column_kind",
    "detect_drift",
    "drift_after_write",
    "drift_gauges",
    "expand_metadata",
    "ks_test",
    "load_frame",
    "parse_spec",
    "prepare_frame",
    "psi",
    "psi_categorical",
    "psi_numeric",
    "record_drift",
    "render_html",
    "write_html",
]
