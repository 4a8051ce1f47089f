"""What every command shares: the runtime, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from app.logging import configure_logging
from app.settings import load_settings
from pipelines.runtime import Runtime

__all__ = ["console", "err_console", "open_runtime", "print_json", "table"]

console = Console()
err_console = Console(stderr=True)


def open_runtime(*, quiet: bool = False, **overrides: object) -> Runtime:
    """The runtime for one command. Console logs show warnings and worse
    (``quiet``: only what the command prints itself); JSON logs follow
    ``DATAOPS_LOG_LEVEL``."""
    settings = load_settings(**overrides)
    if settings.log_format == "json":
        configure_logging("json", settings.log_level)
    else:
        configure_logging("console", "CRITICAL" if quiet else "WARNING")
    return Runtime.open(settings)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    return t
