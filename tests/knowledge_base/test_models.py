"""IncidentRecord validation."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from .conftest import MakeIncident


def test_document_is_title_then_symptoms(make_incident: MakeIncident) -> None:
    incident = make_incident(title="  Title  ", symptoms="line 1\nline 2\n")
    assert incident.title == "Title"
    assert incident.document == "Title\nline 1\nline 2"


def test_requires_timezone_aware_opened_at(make_incident: MakeIncident) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        make_incident(opened_at=datetime(2025, 1, 1, 12, 0))


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", ""),
        ("id", "has space"),
        ("playbook", "Retry With Backoff"),
        ("root_cause", "gremlins"),
        ("outcome", "fixed"),
        ("source", "imported"),
        ("title", "two\nlines"),
        ("seconds_to_resolve", -1.0),
        ("tags", ["no spaces allowed"]),
    ],
)
def test_rejects_bad_fields(make_incident: MakeIncident, field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        make_incident(**{field: value})


def test_tags_are_normalised_and_record_is_frozen(make_incident: MakeIncident) -> None:
    incident = make_incident(tags=["S3", "s3", "throttling"], playbook=None)
    assert incident.tags == ["s3", "throttling"]
    assert incident.playbook is None
    with pytest.raises(ValidationError):
        incident.title = "changed"  # type: ignore[misc]
