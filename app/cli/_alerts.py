"""``dataops alerts``: Prometheus alerting rules for the pipelines' metrics,
and a look at an Alertmanager webhook payload as the agents see it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from app.cli._common import console, err_console, print_json, table

__all__ = ["register", "alerts_app"]

alerts_app = typer.Typer(help="Prometheus alerting rules and Alertmanager payloads.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")


@alerts_app.command("rules")
def alerts_rules(
    out: Annotated[Path | None, typer.Option("--out", help="Write the rules here instead of stdout.")] = None,
    window: Annotated[str, typer.Option(help="Window of the ratio and failure rules (a Prometheus duration).")] = "15m",
    min_records: Annotated[int, typer.Option(help="Records a window must see before a ratio alerts.")] = 100,
    stale_hours: Annotated[int, typer.Option(help="Hours without a record read before a pipeline is stale.")] = 6,
    job: Annotated[str, typer.Option(help="Scrape job name of the pipelines' exporters.")] = "dataops",
) -> None:
    """Write Prometheus alerting rules (rule_files YAML) for the pipelines'
    metrics, checks and drift scores, with a severity label on each rule."""
    from pydantic import ValidationError

    from app.errors import InputError
    from pipelines.quality._prom_rules import AlertRuleConfig, alert_rules, render_rules, write_rules

    try:
        cfg = AlertRuleConfig(window=window, min_records=min_records, stale_hours=stale_hours, job=job)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"invalid option {first['loc'][0]}: {first['msg']}") from None
    if out is None:
        sys.stdout.write(render_rules(cfg))
        return
    write_rules(out, cfg)
    rules = [r for g in alert_rules(cfg)["groups"] for r in g["rules"]]
    severities = {s: sum(r["labels"]["severity"] == s for r in rules) for s in ("critical", "warning", "info")}
    err_console.print(
        f"wrote {len(rules)} rules to {out} "
        f"({severities['critical']} critical, {severities['warning']} warning, {severities['info']} info)"
    )


@alerts_app.command("parse")
def alerts_parse(
    payload: Annotated[Path, typer.Argument(help="An Alertmanager webhook body (JSON, version 4).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the signals as JSON.")] = False,
) -> None:
    """Show the signals an Alertmanager notification becomes."""
    from pipelines.quality._alertmanager import load_alertmanager_payload, payload_signals

    parsed = load_alertmanager_payload(payload)
    signals = payload_signals(parsed)
    if json_out:
        print_json([s.model_dump(mode="json", exclude_none=True) for s in signals])
        return
    truncated = f", {parsed.truncated_alerts} truncated" if parsed.truncated_alerts else ""
    console.print(
        table(
            f"{parsed.status}: {len(parsed.alerts)} alert(s){truncated} · receiver {parsed.receiver}",
            ["status", "alert", "level", "where", "summary"],
            [
                (a.status, s.name, s.level, "/".join(x for x in (s.pipeline, s.dataset) if x), a.summary)
                for a, s in zip(parsed.alerts, signals, strict=True)
            ],
        )
    )
