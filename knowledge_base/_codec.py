"""How an IncidentRecord maps onto a Chroma document, metadata and filter."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.errors import InputError, StorageError
from app.taxonomy import Pipeline

from ._models import IncidentRecord

__all__ = ["EPOCH_KEY", "build_where", "from_chroma", "to_metadata"]

#: Metadata key holding ``opened_at`` as a float epoch, for ``$lt`` filters.
EPOCH_KEY = "opened_at_ts"


def build_where(*, before: datetime | None, pipeline: str | None) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if before is not None:
        if not isinstance(before, datetime):
            raise InputError(f"before must be a datetime, got {type(before).__name__}")
        if before.tzinfo is None or before.utcoffset() is None:
            raise InputError("before must be timezone-aware")
        clauses.append({EPOCH_KEY: {"$lt": before.timestamp()}})
    if pipeline is not None:
        try:
            clauses.append({"pipeline": {"$eq": Pipeline(pipeline).value}})
        except ValueError:
            names = ", ".join(p.value for p in Pipeline)
            raise InputError(f"unknown pipeline {pipeline!r}; expected one of {names}") from None
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def to_metadata(incident: IncidentRecord) -> dict[str, str | float]:
    meta: dict[str, str | float] = {
        "pipeline": incident.pipeline.value,
        "opened_at": incident.opened_at.isoformat(),
        EPOCH_KEY: incident.opened_at.timestamp(),
        "title": incident.title,
        "root_cause": incident.root_cause.value,
        "decision": incident.decision.value,
        "outcome": incident.outcome.value,
        "resolution": incident.resolution,
        "tags": json.dumps(incident.tags),
        "source": incident.source,
    }
    # Chroma cannot store None; absent keys mean "not set".
    if incident.playbook is not None:
        meta["playbook"] = incident.playbook
    if incident.seconds_to_resolve is not None:
        meta["seconds_to_resolve"] = float(incident.seconds_to_resolve)
    return meta


def from_chroma(incident_id: str, document: str | None, meta: Mapping[str, Any] | None) -> IncidentRecord:
    if meta is None or document is None:
        raise StorageError(f"incident {incident_id!r} is stored without its document or metadata")
    title = str(meta.get("title", ""))
    prefix = f"{title}\n"
    symptoms = document[len(prefix) :] if document.startswith(prefix) else document
    try:
        tags = json.loads(meta.get("tags", "[]"))
        return IncidentRecord(
            id=incident_id,
            pipeline=meta["pipeline"],
            opened_at=meta["opened_at"],
            title=title,
            symptoms=symptoms,
            root_cause=meta["root_cause"],
            playbook=meta.get("playbook"),
            decision=meta["decision"],
            outcome=meta["outcome"],
            resolution=meta.get("resolution", ""),
            seconds_to_resolve=meta.get("seconds_to_resolve"),
            tags=tags,
            source=meta.get("source", "live"),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise StorageError(f"incident {incident_id!r} in memory is malformed: {exc}") from exc
