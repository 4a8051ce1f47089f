"""``dataops check``: run a dataset's check suite on a snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli._common import console, open_runtime, print_json, table
from app.errors import InputError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def register(app: typer.Typer) -> None:
    app.command("check")(check_cmd)


def _is_parquet(target: str) -> bool:
    return target.lower().endswith(".parquet") or ("/" in target and Path(target).exists())


def check_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name, or a Parquet file or folder.")],
    suite: Annotated[
        Path | None, typer.Option("--suite", help="Suite YAML to run instead of the dataset's own (registers nothing).")
    ] = None,
    save: Annotated[
        bool, typer.Option("--save", help="Register --suite as the dataset's suite, then run and record it.")
    ] = False,
    snapshot: Annotated[int | None, typer.Option("--snapshot", help="Snapshot id (default: the current one).")] = None,
    examples: Annotated[
        int | None, typer.Option("--examples", min=0, help="Failing example rows per check (default: the suite's, 5).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Neither store the results nor emit events.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run a dataset's check suite on a snapshot; exit 1 if a critical check fails.

    The suite is the one registered for the dataset (else the default for its
    pipeline). Results of the dataset's own suite are stored and emitted as
    run events; a --suite that is not --save'd is a trial run and records nothing.
    """
    from pipelines.quality import (
        default_suite,
        load_suite,
        read_parquet,
        record_results,
        register_suite,
        run_dataset_checks,
        run_suite,
    )

    if save and suite is None:
        raise InputError("--save needs --suite FILE: the suite to register")
    recorded = False
    if _is_parquet(dataset):
        if save or snapshot is not None:
            raise InputError("--save and --snapshot apply to a dataset, not to a Parquet file")
        open_runtime(quiet=True)  # logging set up as for every command
        chosen = load_suite(suite) if suite is not None else default_suite("ingestion")
        result = run_suite(read_parquet(dataset), chosen, max_examples=examples, dataset=dataset)
    else:
        rt = open_runtime(quiet=True)
        row = rt.dataset(dataset)
        if save and suite is not None:
            chosen = register_suite(rt, dataset, suite)
        elif suite is not None:
            chosen = load_suite(suite)
        else:
            chosen = None
        result = run_dataset_checks(rt, dataset, chosen, snapshot, max_examples=examples)
        if not dry_run and (suite is None or save):
            record_results(rt, row.pipeline, dataset, result)
            recorded = True
    if json_out:
        print_json({**result.to_dict(), "recorded": recorded})
    else:
        _print(result, recorded)
    if result.critical_failed:
        raise typer.Exit(1)


def _example_columns(check: Any) -> list[str]:
    keys = list(dict.fromkeys(k for row in check.failing_examples for k in row))
    wanted = [c for c in ([check.expected.get("column")] + list(check.expected.get("columns") or [])) if c]
    if not wanted:
        return keys[:8]
    first_data = next((k for k in keys if k != "_row"), None)
    picked = ["_row", *wanted] + ([first_data] if first_data and first_data not in wanted else [])
    return [k for k in dict.fromkeys(picked) if k in keys]


def _print(result: Any, recorded: bool) -> None:
    from pipelines.quality._results import expected_text, observed_text

    where = result.dataset if result.snapshot_id is None else f"{result.dataset} @ snapshot {result.snapshot_id}"
    rows = []
    for r in result.results:
        mark = "[green]✓ pass[/]" if r.passed else f"[{_SEVERITY_STYLE.get(r.severity, 'red')}]✗ FAIL[/]"
        observed = f"[red]{r.error}[/]" if r.error else observed_text(r)
        rows.append((mark, r.name, r.type, r.severity, observed, expected_text(r)))
    title = f"Checks on {where} ({result.row_count} rows, suite: {result.suite})"
    console.print(table(title, ["", "check", "type", "severity", "observed", "expected"], rows))
    for r in result.failed:
        if not r.failing_examples:
            continue
        cols = _example_columns(r)
        shown = [[row.get(c) for c in cols] for row in r.failing_examples]
        more = r.unexpected_count - len(shown)
        examples = table(f"Failing examples: {r.name}", cols, shown)
        examples.caption = f"{len(shown)} of {r.unexpected_count} failing rows" if more > 0 else None
        examples.caption_justify = "left"
        console.print(examples)
    c = result.counts()
    failed = ", ".join(f"{c[f'failed_{s}']} {s}" for s in ("critical", "warning", "info") if c[f"failed_{s}"])
    verdict = f"{c['passed']} passed, {c['failed']} failed" + (f" ({failed})" if failed else "")
    note = "; results recorded" if recorded else ""
    style = "bold red" if result.critical_failed else "yellow" if c["failed"] else "green"
    console.print(f"[{style}]{c['total']} checks: {verdict}[/] in {result.seconds:.2f} s{note}")
