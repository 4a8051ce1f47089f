"""Enrichment commands: ``dataops enrich DATASET`` (the default ``run``),
``dataops enrich report DATASET --html out.html`` and ``dataops search``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from app.cli._common import console, open_runtime, print_json, table

__all__ = ["register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
VersionOpt = Annotated[str | None, typer.Option("--version", help="Enrichment version (default: the newest).")]
RunVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--version",
        help="Version to write (default: the newest made by the configured models, else a new v<n>).",
    ),
]


class _RunByDefault(TyperGroup):
    """``dataops enrich DATASET ...`` means ``dataops enrich run DATASET ...``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


enrich_app = typer.Typer(
    cls=_RunByDefault,
    help="Enrich a dataset: quality scores, dedup, auto-labels, embeddings. `dataops enrich DATASET` runs it.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(enrich_app, name="enrich")
    app.command("search")(search_cmd)


def _run_with_progress(rt: Any, dataset: str, version: str | None, *, show: bool) -> Any:
    from pipelines.enrichment import enrichment_job
    from pipelines.runtime import RunProgress

    job = enrichment_job(dataset, version=version)
    if not show:
        job.run(rt)
        return job.last_result
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"enriching {dataset}", total=None)

        def on_batch(p: RunProgress) -> None:
            if bar.tasks[0].total is None and job.binding.rt is not None:
                bar.update(task, total=_raw_count(job))
            bar.update(task, completed=p.read + p.skipped)

        job.run(rt, progress=on_batch)
    return job.last_result


def _raw_count(job: Any) -> int | None:
    rt, plan = job.binding.rt, job.binding.plan
    if rt is None or plan is None or plan.raw_snapshot_id is None:
        return None
    return int(rt.offline.scan(plan.dataset, plan.raw_snapshot_id, columns=["sample_id"]).num_rows)


@enrich_app.command("run")
def run_cmd(
    dataset: Annotated[str, typer.Argument(help="An ingested dataset.")],
    version: RunVersionOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Enrich the dataset's current raw snapshot (the default command).

    Samples the version already holds are skipped, so a rerun only enriches
    what was ingested since.
    """
    rt = open_runtime()
    result = _run_with_progress(rt, dataset, version, show=not json_out)
    data = result.to_json()
    if json_out:
        print_json(data)
    else:
        _print_result(result)
    if result.status == "failed":
        raise typer.Exit(1)


def _print_result(r: Any) -> None:
    rows = [
        ("run", r.run_id),
        ("dataset / version", f"{r.dataset} {r.version}"),
        ("status", r.status),
        ("models", f"embedding {r.embedding_model}, labeler {r.label_model}"),
        ("processed", r.processed),
        ("skipped (already in this version)", r.skipped),
        ("duplicates", f"{r.duplicates} {r.duplicate_kinds or ''}".strip()),
        ("auto-labels accepted / proposed", f"{r.auto_labeled} / {r.auto_proposed}"),
        ("embedded", r.embedded),
        ("quarantined", f"{r.quarantined} {r.quarantine_reasons or ''}".strip()),
        ("raw snapshot -> enrichment snapshot", f"{r.raw_snapshot_id} -> {r.snapshot_id}"),
        ("seconds", f"{r.seconds:.2f}"),
    ]
    if r.error:
        rows.append(("error", r.error))
    console.print(table(f"Enrichment run {r.run_id}", ["", "value"], rows))
    console.print(
        table("Stages", ["stage", "in", "removed", "as"], [(s.stage, s.entered, s.removed, s.removed_as) for s in r.stages])
    )
    if r.flagged:
        console.print(table("Flagged issues", ["issue", "records"], sorted(r.flagged.items())))


@enrich_app.command("report")
def report_cmd(
    dataset: Annotated[str, typer.Argument(help="An enriched dataset.")],
    html: Annotated[Path, typer.Option("--html", help="Where to write the HTML report.")],
    version: VersionOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """An HTML report: every issue type with its score histogram and examples, and the duplicates."""
    from pipelines.enrichment import write_report

    rt = open_runtime()
    counts = write_report(rt, dataset, html, version)
    if json_out:
        print_json({"dataset": dataset, "path": str(html), "flagged": counts})
    else:
        console.print(f"wrote {html} ({sum(counts.values())} flags over {len(counts)} issue types)")


def search_cmd(
    dataset: Annotated[str, typer.Argument(help="An enriched dataset.")],
    query: Annotated[str | None, typer.Argument(help="Text to search for.")] = None,
    like: Annotated[str | None, typer.Option("--like", help="Find samples similar to this sample id.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="How many results.")] = 10,
    version: VersionOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Similarity search in a dataset's enrichment: by text, or by example with --like."""
    from app.errors import InputError
    from pipelines.enrichment import search_like, search_text

    if (query is None) == (like is None):
        raise InputError("give either a search text or --like SAMPLE_ID")
    rt = open_runtime()
    if like is not None:
        hits = search_like(rt, dataset, like, k=k, version=version)
    else:
        assert query is not None
        hits = search_text(rt, dataset, query, k=k, version=version)
    rows = [h.__dict__ for h in hits]
    if json_out:
        print_json(rows)
        return
    title = f"Nearest to {like}" if like else f"Search {query!r}"
    console.print(
        table(
            f"{title} in {dataset}",
            ["#", "sample", "similarity", "kind", "modality", "source"],
            [(i, h.sample_id, f"{h.similarity:.3f}", h.kind, h.modality, h.source) for i, h in enumerate(hits, 1)],
        )
    )
