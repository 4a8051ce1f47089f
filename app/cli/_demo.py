"""``dataops demo``: a small multimodal dataset ingested end to end."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli._common import console, open_runtime, print_json
from app.cli._data import ingest_with_progress, print_summary
from pipelines.ingestion import make_sample_dataset


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    dataset: Annotated[str, typer.Option(help="Dataset name to ingest into.")] = "demo",
) -> None:
    """Make a small multimodal dataset (with duplicates, near-duplicates and
    broken files) in the workspace and ingest it."""
    rt = open_runtime()
    folder = rt.settings.home / "demo" / "incoming"
    if not folder.exists():
        make_sample_dataset(folder)
    summary = ingest_with_progress(rt, str(folder), dataset, show=not json_out)
    if json_out:
        print_json(summary.model_dump())
        return
    print_summary(summary)
    ok = summary.read == summary.accepted + summary.duplicates + summary.quarantined
    console.print(
        f"accounting: read {summary.read} = accepted {summary.accepted} + duplicates "
        f"{summary.duplicates} + quarantined {summary.quarantined} "
        + ("[green]✓ nothing lost[/green]" if ok else "[red]✗ MISMATCH[/red]")
    )
