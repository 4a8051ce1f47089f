"""``dataops demo``: ingestion, annotation and enrichment under supervision
while real faults strike them."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli._common import console, open_runtime, print_json, table


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    dataset: Annotated[str, typer.Option(help="Dataset name to ingest into.")] = "demo",
    faults: Annotated[str | None, typer.Option(help="Comma-separated fault names (see `dataops chaos list`).")] = None,
    memory: Annotated[bool, typer.Option(help="Use the incident memory (loads the MiniLM model).")] = True,
) -> None:
    """Run ingestion, annotation and enrichment under the agents while a
    script of faults is injected, then show each incident and the data
    accounting."""
    from app.demo import DEFAULT_SCRIPT, run_demo

    rt = open_runtime(quiet=True)
    script = tuple(f.strip() for f in faults.split(",") if f.strip()) if faults else DEFAULT_SCRIPT
    mem = None
    if memory:
        from knowledge_base import IncidentMemory

        mem = IncidentMemory.from_settings(rt.settings)
        mem.seed_if_empty()
    if json_out:
        report = run_demo(rt, dataset=dataset, script=script, memory=mem)
        print_json(report.as_dict())
        return
    with console.status("starting…") as status:
        report = run_demo(rt, dataset=dataset, script=script, memory=mem, on_step=lambda m: status.update(m))
    colour = {"resolved": "green", "pending_approval": "yellow", "escalated": "yellow"}
    console.print(
        table(
            "Incidents",
            ["fault", "pipeline", "root cause", "decision", "playbook", "outcome", "s to resolve"],
            [
                (
                    i["fault"],
                    i["pipeline"],
                    i["root_cause"],
                    i["decision"],
                    i["playbook"],
                    f"[{colour.get(i['status'], 'red')}]{i['status']}[/]",
                    "" if i["seconds_to_resolve"] is None else f"{i['seconds_to_resolve']:.1f}",
                )
                for i in report.incidents
            ],
        )
    )
    a = report.accounting
    ok = a["read"] == a["accepted"] + a["duplicates"] + a["quarantined"] and a["files_missing"] == 0
    console.print(
        f"accounting: read {a['read']} = accepted {a['accepted']} + duplicates {a['duplicates']} + "
        f"quarantined {a['quarantined']}; {a['files_landed']} files landed, {a['files_missing']} without a record "
        + ("[green]✓ nothing lost[/green]" if ok else "[red]✗ records missing[/red]")
    )
    console.print("pending incidents: `dataops incidents list --status open`; approve with `dataops incidents approve ID`")
