"""``dataops eval``: replay recorded incidents and inject real faults, and
score what the agents did."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli._common import console, err_console, print_json, table

if TYPE_CHECKING:
    from evals import EvalReport, LiveReport

__all__ = ["register", "eval_app"]

eval_app = typer.Typer(help="Replay recorded incidents and inject faults; score the agents.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


class OnOff(StrEnum):
    on = "on"
    off = "off"


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _quiet_logs() -> None:
    from app.logging import configure_logging

    configure_logging("console", "CRITICAL")


@eval_app.command("run")
def eval_run(
    paths: Annotated[list[Path], typer.Argument(help="Case files or folders (searched for *.yaml, *.yml).")],
    json_out: JsonOpt = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write a Markdown report here.")] = None,
    memory: Annotated[OnOff, typer.Option(help="Incident memory: the seed incidents before each case, or empty.")] = OnOff.on,
    llm: Annotated[str, typer.Option(help="none | openai:MODEL | ollama:MODEL (base URL and key from DATAOPS_LLM_*).")] = "none",
    repeat: Annotated[int, typer.Option(min=1, help="Run every case this many times (LLM variance).")] = 1,
    thresholds: Annotated[Path | None, typer.Option(help="Thresholds file; default evals/thresholds.yaml.")] = None,
) -> None:
    """Replay every case through the agents and score them. Exits 1 when a
    threshold is missed (the JSON and the report are written either way)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from evals import ReplayHarness, RunOptions, build_report, load_cases, load_thresholds, summarize, to_markdown

    _quiet_logs()
    cases = load_cases(paths)
    limits = load_thresholds(thresholds, known=set(summarize([])))
    options = RunOptions(memory=memory == OnOff.on, llm=llm, repeat=repeat)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("loading incident memory" if options.memory else "starting", total=len(cases) * repeat)
        with ReplayHarness(options) as harness:
            progress.update(task, description="replaying")
            results = harness.run(cases, on_case=lambda r: progress.update(task, advance=1, description=r.id[:40]))
    out = build_report(results, options={**options.describe(), "thresholds": str(thresholds or "evals/thresholds.yaml")},
                       thresholds=limits)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(to_markdown(out), encoding="utf-8")
    if json_out:
        print_json(out.as_dict())
    else:
        _print_run(out, report)
    if not out.passed:
        raise typer.Exit(1)


def _pct(v: object) -> str:
    return f"{v:.1%}" if isinstance(v, float) else ("–" if v is None else str(v))


def _print_run(out: EvalReport, report: Path | None) -> None:
    t = out.totals
    checks = {c.metric: c for c in out.thresholds}
    keys = ("cases", "passed", "detection_rate", "false_alarms", "root_cause_accuracy", "decision_accuracy",
            "playbook_accuracy", "resolved_rate", "unsafe_actions", "false_actions_on_no_fault", "awaiting_approval",
            "escalated", "errors", "mean_steps", "no_data", "mean_sim_seconds_to_resolve", "wall_s")
    rows = []
    for k in keys:
        c = checks.get(k)
        mark = "" if c is None else (f"[green]✓ {c.describe()}[/]" if c.ok else f"[red]✗ {c.describe()}[/]")
        value = _pct(t[k]) if k.endswith(("rate", "accuracy")) else t[k]
        rows.append((k, value, mark))
    console.print(table("Eval totals", ["total", "value", "threshold"], rows))
    failures = out.failures
    if failures:
        console.print(
            table(
                f"Failures ({len(failures)})",
                ["case", "missed", "expected rc / decision / playbook", "actual rc / decision / playbook"],
                [
                    (c.id, ", ".join(c.failed_scores),
                     f"{c.expected['root_cause']} / {c.expected['decision']} / {', '.join(c.expected['playbooks']) or '–'}",
                     f"{c.actual.get('root_cause') or '–'} / {c.actual.get('decision') or '–'} / {c.actual.get('playbook') or '–'}")
                    for c in failures
                ],
            )
        )
    verdict = "[green]all thresholds met[/]" if out.passed else "[red]thresholds missed[/]"
    console.print(verdict + (f"; report written to {report}" if report else ""))


@eval_app.command("live")
def eval_live(
    faults: Annotated[str, typer.Option(help="Comma-separated fault names (see `dataops chaos list`).")],
    json_out: JsonOpt = False,
    memory: Annotated[OnOff, typer.Option(help="Incident memory: the seed incidents, or empty.")] = OnOff.on,
    llm: Annotated[str, typer.Option(help="none | openai:MODEL | ollama:MODEL.")] = "none",
) -> None:
    """Run the real ingestion pipeline under the agents in a throwaway
    workspace while the faults strike, one after another, and score each.
    Exits 1 when a record was lost or an action was unsafe."""
    from evals import run_live

    _quiet_logs()
    names = [f.strip() for f in faults.split(",") if f.strip()]
    if json_out:
        out = run_live(names, memory=memory == OnOff.on, llm=llm)
        print_json(out.as_dict())
    else:
        with err_console.status("starting…") as status:
            out = run_live(names, memory=memory == OnOff.on, llm=llm, on_step=lambda m: status.update(m))
        _print_live(out)
    if not out.passed:
        raise typer.Exit(1)


def _print_live(out: LiveReport) -> None:
    console.print(
        table(
            "Faults",
            ["fault", "root cause", "decision", "playbook", "status", "detect s", "resolve s", "missed"],
            [
                (f["fault"], f["actual"]["root_cause"], f["actual"]["decision"], f["actual"]["playbook"],
                 f["actual"]["status"], f["detection_s"], f["resolve_s"],
                 ", ".join(k for k, ok in f["scores"].items() if not ok) or "–")
                for f in out.faults
            ],
        )
    )
    t = out.totals
    console.print(
        table("Live totals", ["total", "value"],
              [(k, _pct(v) if k.endswith(("rate", "accuracy")) else v) for k, v in t.items()])
    )
    lost = t["records_lost"]
    console.print("[green]✓ nothing lost[/]" if lost == 0 else f"[red]✗ {lost} records lost[/]")
