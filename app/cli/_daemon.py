"""``dataops daemon``: run the schedules, the agents and the HTTP server
until stopped, or ``--once``: one pass of everything, then exit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from app.cli._common import console, print_json, table

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("daemon")(daemon_cmd)


def daemon_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free one).")] = 8080,
    config: Annotated[
        Path | None, typer.Option("--config", help="Jobs and schedules (YAML); default DATAOPS_DAEMON_CONFIG.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one pass of everything, then exit.")] = False,
    log_format: Annotated[str, typer.Option(help="json (one object a line) or console.")] = "json",
    json_out: Annotated[bool, typer.Option("--json", help="With --once: print the pass as JSON.")] = False,
) -> None:
    """Run pipeline schedules, monitor cycles and housekeeping, and serve
    /healthz, /readyz, /metrics, the Alertmanager and Slack webhooks and the
    JSON API. SIGTERM stops it cleanly within the configured bound."""
    from app.daemon import load_daemon_config, run_once, serve
    from app.errors import InputError
    from app.logging import configure_logging
    from app.settings import load_settings
    from pipelines.runtime import Runtime

    if log_format not in ("json", "console"):
        raise InputError(f"--log-format must be json or console, not {log_format!r}")
    fmt: Literal["json", "console"] = "json" if log_format == "json" else "console"
    settings = load_settings(log_format=fmt)
    # A person running one pass reads the tables; the log says only what went wrong.
    configure_logging(fmt, "WARNING" if once and fmt == "console" else settings.log_level)
    cfg = load_daemon_config(config or settings.daemon_config)
    rt = Runtime.open(settings)
    if not once:
        raise typer.Exit(serve(rt, cfg, host=host, port=port))
    try:
        result = run_once(rt, cfg)
    finally:
        rt.close()
    if json_out:
        print_json(result)
        return
    console.print(
        table(
            "Runs",
            ["job", "status", "read", "accepted", "quarantined", "error"],
            [
                (r["job"], r["status"], r.get("read"), r.get("accepted"), r.get("quarantined"), r.get("error") or r.get("reason"))
                for r in result["runs"]
            ],
        )
    )
    console.print(
        table(
            "Incidents opened",
            ["id", "pipeline", "dataset", "status", "root cause", "playbook"],
            [(i["id"], i["pipeline"], i["dataset"], i["status"], i["root_cause"], i["playbook"]) for i in result["incidents"]],
        )
    )
    if result["resumed"]:
        console.print(f"resumed {len(result['resumed'])} in-flight incident(s): {', '.join(result['resumed'])}")
