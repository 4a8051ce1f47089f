"""The ``dataops`` command line."""

from __future__ import annotations

import sys

import typer

from app.errors import DataOpsError

__all__ = ["app", "main"]

app = typer.Typer(
    name="dataops",
    help="Autonomous operations for ML data pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from app.cli import _alerts, _annotate, _chaos, _check, _daemon, _data, _demo, _drift, _enrich, _eval, _ops

    _data.register(app)
    _demo.register(app)
    _ops.register(app)
    _chaos.register(app)
    _eval.register(app)
    _alerts.register(app)
    _check.register(app)
    _drift.register(app)
    _annotate.register(app)
    _enrich.register(app)
    _daemon.register(app)


def main() -> None:
    _register()
    try:
        app()
    except DataOpsError as exc:
        sys.stderr.write(f"dataops: error: {exc}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("dataops: interrupted; rerun the same command to resume\n")
        sys.exit(130)
