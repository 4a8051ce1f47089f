"""The /dataops command language."""

from __future__ import annotations

import pytest

from app.chatops import Command, parse_command
from app.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("  HELP ", Command("help")),
        ("status", Command("status")),
        ("incidents", Command("incidents", which="open")),
        ("incidents all", Command("incidents", which="all")),
        ("show inc-1", Command("show", target="inc-1")),
        ("approve inc-1", Command("approve", target="inc-1")),
        ("reject inc-1", Command("reject", target="inc-1")),
        ("reject inc-1 the  source is   back", Command("reject", target="inc-1", text="the  source is   back")),
        ("pause", Command("pause")),
        ("pause all", Command("pause")),
        ("pause ingestion", Command("pause", target="ingestion")),
        ("resume *", Command("resume")),
        ("run ingestion/ds", Command("run", target="ingestion/ds")),
        ("ask why did ingestion fail?", Command("ask", text="why did ingestion fail?")),
    ],
)
def test_commands_parse(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("frobnicate", "unknown command 'frobnicate'"),
        ("show", "/dataops show ID"),
        ("approve a b", "/dataops approve ID"),
        ("reject", "/dataops reject ID"),
        ("incidents closed", r"\[open\|all\]"),
        ("pause a b", "/dataops pause"),
        ("run", "/dataops run PIPELINE"),
        ("ask", "/dataops ask QUESTION"),
    ],
)
def test_malformed_commands_say_how_to_use_them(text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        parse_command(text)


def test_detail_names_what_the_command_is_about() -> None:
    assert parse_command("reject inc-9 flaky").detail() == {"command": "reject", "target": "inc-9", "text": "flaky"}
    assert parse_command("incidents all").detail() == {"command": "incidents", "which": "all"}
