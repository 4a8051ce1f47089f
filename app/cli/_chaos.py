"""``dataops chaos``: the fault injectors the evals and demos use."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli._common import console, print_json, table

__all__ = ["register", "chaos_app"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

chaos_app = typer.Typer(help="Fault injection: real failures, one per incident class.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(chaos_app, name="chaos")


@chaos_app.command("list")
def chaos_list(json_out: JsonOpt = False) -> None:
    """The faults that can be injected, with the diagnosis and fix each expects."""
    from evals.faults import FAULTS

    infos = [cls.info() for cls in FAULTS.values()]
    if json_out:
        print_json(infos)
        return
    console.print(
        table(
            "Faults",
            ["name", "pipeline", "expected root cause", "expected playbook", "description"],
            (
                (i["name"], i["pipeline"], i["expected_root_cause"], i["expected_playbook"], i["description"])
                for i in infos
            ),
        )
    )
