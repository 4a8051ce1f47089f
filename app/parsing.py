"""Turning text a person wrote into data, with one clear line when it is wrong.

Shared by every loader of YAML (schemas, suites, policies, playbooks, cases)
and every place a pydantic error reaches a person.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from app.errors import DataOpsError, InputError

__all__ = ["load_yaml_mapping", "validation_summary"]


def load_yaml_mapping(
    text: str, *, origin: str, what: str = "file", error: type[DataOpsError] = InputError
) -> dict[str, Any]:
    """Parse YAML whose top level must be a mapping; ``origin`` (a path, or a
    name) and the line of a syntax error start the message."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{origin}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise error(f"{origin}: a {what} is a mapping at the top level, got {type(data).__name__}")
    return data


def validation_summary(exc: ValidationError, *, root: str = "(top level)") -> str:
    """``field.path: message (and N more)`` for the first error."""
    first, *rest = exc.errors()
    loc = ".".join(str(p) for p in first["loc"]) or root
    msg = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(rest)} more)" if rest else ""
    return f"{loc}: {msg}{more}"
