"""The seed library: past incidents that incident memory starts with.

They live in ``knowledge_base/seed/incidents.yaml``, shipped as package data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.errors import ConfigError

from ._models import IncidentRecord

__all__ = ["SEED_RESOURCE", "load_seed_incidents"]

SEED_RESOURCE = "incidents.yaml"


def load_seed_incidents(path: Path | None = None) -> list[IncidentRecord]:
    """Read and validate the seed incidents (the shipped file unless ``path`` is given).

    Raises :class:`ConfigError` naming the entry and field when one is invalid.
    """
    if path is None:
        where = f"knowledge_base/seed/{SEED_RESOURCE}"
        try:
            text = resources.files("knowledge_base.seed").joinpath(SEED_RESOURCE).read_text("utf-8")
        except (OSError, ModuleNotFoundError) as exc:
            raise ConfigError(f"cannot read the seed incidents ({where}): {exc}") from exc
    else:
        where = str(path)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read seed incidents from {where}: {exc}") from exc
    return parse_seed_incidents(text, where=where)


def parse_seed_incidents(text: str, *, where: str = "<seed>") -> list[IncidentRecord]:
    """Validate seed YAML text: a mapping with an ``incidents`` list."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("incidents"), list):
        raise ConfigError(f"{where}: expected a mapping with an 'incidents' list")
    records: list[IncidentRecord] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(data["incidents"], start=1):
        label = _label(index, entry)
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: {label} is not a mapping")
        fields = {"source": "seed", **entry}
        try:
            record = IncidentRecord.model_validate(fields)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {label} is invalid: {_first_error(exc)}") from None
        if record.source != "seed":
            raise ConfigError(f"{where}: {label} has source {record.source!r}; seed entries are 'seed'")
        if record.id in seen:
            raise ConfigError(
                f"{where}: {label} repeats the id of incident #{seen[record.id]}"
            )
        seen[record.id] = index
        records.append(record)
    return records


def _label(index: int, entry: object) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return f"incident #{index} ({entry['id']})"
    return f"incident #{index}"


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"]) or "entry"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {first['msg']}{more}"
