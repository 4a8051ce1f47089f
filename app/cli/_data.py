"""Data commands: ingest, runs, datasets, quarantine, manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlmodel import Session, col, select

from app.cli._common import console, open_runtime, print_json, table
from pipelines.ingestion import export_manifest, ingest, open_source
from pipelines.runtime import QuarantineRow, RecordRow, RunProgress, RunRow, RunSummary, Runtime

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

runs_app = typer.Typer(help="Pipeline runs.", no_args_is_help=True)
datasets_app = typer.Typer(help="Datasets.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Quarantined records.", no_args_is_help=True)
manifest_app = typer.Typer(help="Dataset manifests.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest_cmd)
    app.add_typer(runs_app, name="runs")
    app.add_typer(datasets_app, name="datasets")
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(manifest_app, name="manifest")


def summary_dict(s: RunSummary) -> dict[str, object]:
    return s.model_dump()


def print_summary(s: RunSummary) -> None:
    rows = [
        ("run", s.run_id),
        ("dataset", s.dataset),
        ("status", s.status),
        ("read", s.read),
        ("accepted", s.accepted),
        ("duplicates", s.duplicates),
        ("quarantined", s.quarantined),
        *((f"  {reason}", n) for reason, n in sorted(s.quarantine_reasons.items())),
        ("skipped (already ingested)", s.skipped),
        ("snapshot", s.snapshot_id),
        ("seconds", f"{s.seconds:.2f}"),
    ]
    if s.error:
        rows.append(("error", s.error))
    console.print(table(f"Ingestion run {s.run_id}", ["", "value"], rows))


def ingest_with_progress(rt: Runtime, source: str, dataset: str, *, show: bool, schema: Path | None = None) -> RunSummary:
    src = open_source(source)
    total = getattr(src, "count", lambda: None)()
    if not show:
        try:
            return ingest(rt, src, dataset, schema_path=schema)
        finally:
            src.close()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"ingesting into {dataset}", total=total)

        def on_batch(p: RunProgress) -> None:
            bar.update(task, completed=p.read + p.skipped)

        try:
            return ingest(rt, src, dataset, schema_path=schema, progress=on_batch)
        finally:
            src.close()


def ingest_cmd(
    source: Annotated[str, typer.Argument(help="Folder, fsspec URL, events .jsonl, nats://… or redis://…")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset to ingest into.")],
    schema: Annotated[Path | None, typer.Option(help="Dataset schema YAML.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Ingest a batch folder or a stream into a dataset."""
    rt = open_runtime()
    s = ingest_with_progress(rt, source, dataset, show=not json_out, schema=schema)
    if json_out:
        print_json(summary_dict(s))
    else:
        print_summary(s)
    if s.status == "failed":
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    limit: int = 50,
    json_out: JsonOpt = False,
) -> None:
    """Recent runs, newest first."""
    rt = open_runtime()
    if dataset:
        rt.dataset(dataset)
    q = select(RunRow).order_by(col(RunRow.created_at).desc()).limit(limit)
    if dataset:
        q = q.where(RunRow.dataset == dataset)
    with Session(rt.engine) as s:
        runs = [RunSummary.of(r) for r in s.exec(q)]
    if json_out:
        print_json([r.model_dump() for r in runs])
        return
    cols = ["run", "pipeline", "dataset", "status", "read", "accepted", "dup", "quar", "snapshot", "s"]
    console.print(
        table(
            "Runs",
            cols,
            [
                (r.run_id, r.pipeline, r.dataset, r.status, r.read, r.accepted, r.duplicates, r.quarantined, r.snapshot_id, f"{r.seconds:.1f}")
                for r in runs
            ],
        )
    )


@runs_app.command("show")
def runs_show(run_id: str, json_out: JsonOpt = False) -> None:
    """One run: its summary and what happened to every record."""
    rt = open_runtime()
    with Session(rt.engine) as s:
        run = s.get(RunRow, run_id)
        if run is None:
            from app.errors import NotFoundError

            raise NotFoundError(f"no run {run_id!r} (see `dataops runs list`)")
        records = list(s.exec(select(RecordRow).where(RecordRow.run_id == run_id).order_by(col(RecordRow.id))))
    summary = RunSummary.of(run)
    recs = [
        {
            "source": r.source,
            "outcome": r.outcome,
            "sample_id": r.sample_id,
            "reason": r.reason,
            "detail": r.detail,
            "duplicate_of": r.duplicate_of,
        }
        for r in records
    ]
    if json_out:
        print_json({**summary.model_dump(), "records": recs})
        return
    print_summary(summary)
    console.print(
        table(
            "Records",
            ["source", "outcome", "sample", "reason / duplicate of"],
            [(r["source"], r["outcome"], r["sample_id"], r["reason"] or r["duplicate_of"]) for r in recs],
        )
    )


@datasets_app.command("list")
def datasets_list(json_out: JsonOpt = False) -> None:
    """Datasets with their sample counts."""
    rt = open_runtime()
    from sqlalchemy import func

    from pipelines.runtime import SampleRow

    with Session(rt.engine) as s:
        counts = dict(s.exec(select(SampleRow.dataset, func.count()).group_by(SampleRow.dataset)).all())
    rows = [
        {"name": d.name, "pipeline": d.pipeline, "samples": int(counts.get(d.name, 0)), "created_at": d.created_at}
        for d in rt.datasets()
    ]
    if json_out:
        print_json(rows)
        return
    console.print(table("Datasets", ["name", "pipeline", "samples", "created"], [tuple(r.values()) for r in rows]))


@quarantine_app.command("list")
def quarantine_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    limit: int = 200,
    json_out: JsonOpt = False,
) -> None:
    """Quarantined records with their reasons; the original bytes are kept at `uri`."""
    rt = open_runtime()
    if dataset:
        rt.dataset(dataset)
    q = select(QuarantineRow).order_by(col(QuarantineRow.id).desc()).limit(limit)
    if dataset:
        q = q.where(QuarantineRow.dataset == dataset)
    with Session(rt.engine) as s:
        rows = [r.model_dump() for r in s.exec(q)]
    if json_out:
        print_json(rows)
        return
    console.print(
        table(
            "Quarantine",
            ["dataset", "source", "reason", "detail", "run"],
            [(r["dataset"], r["source"], r["reason"], r["detail"], r["run_id"]) for r in rows],
        )
    )


@manifest_app.command("export")
def manifest_export(
    dataset: str,
    out: Annotated[Path, typer.Argument(help="Output .parquet file.")],
    json_out: JsonOpt = False,
) -> None:
    """Write the dataset manifest (one row per sample) to Parquet."""
    rt = open_runtime()
    n = export_manifest(rt, dataset, out)
    if json_out:
        print_json({"dataset": dataset, "rows": n, "path": str(out)})
    else:
        console.print(f"wrote {n} rows to {out}")
