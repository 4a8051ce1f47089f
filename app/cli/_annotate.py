"""``dataops annotate``: the annotation queue, Label Studio export and import,
the terminal labeller, and the active-learning simulation."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    from app.cli import _annotate_ops, _annotate_sim

    group = typer.Typer(name="annotate", help="Annotation: queue, auto-labels, consensus, review.", no_args_is_help=True)
    _annotate_ops.register(group)
    _annotate_sim.register(group)
    app.add_typer(group, name="annotate")
