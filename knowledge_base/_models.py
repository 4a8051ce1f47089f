"""What incident memory stores: one past incident and how it was handled."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from app.taxonomy import Decision, Outcome, Pipeline, RootCause

__all__ = ["IncidentRecord", "IncidentSource", "Match", "OUTCOME_SUCCESS", "OUTCOME_FAILURE"]

IncidentSource = Literal["seed", "live", "eval"]

#: Outcomes that count for and against a playbook in success rates; the
#: others (escalated, no_action) say nothing about whether the playbook works.
OUTCOME_SUCCESS: frozenset[Outcome] = frozenset({Outcome.RESOLVED})
OUTCOME_FAILURE: frozenset[Outcome] = frozenset({Outcome.FAILED, Outcome.ROLLED_BACK})

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_PLAYBOOK_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_TAG_PATTERN = r"^[a-z0-9][a-z0-9._:/-]{0,63}$"


class IncidentRecord(BaseModel):
    """A past incident: what it looked like, what caused it, what was done, how it ended.

    ``title`` and ``symptoms`` are what similarity search embeds; ``symptoms``
    holds the error messages, log lines, metric and check names that
    characterised the incident.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id: str = Field(pattern=_ID_PATTERN)
    pipeline: Pipeline
    opened_at: AwareDatetime
    title: str = Field(min_length=1, max_length=300)
    symptoms: str = Field(min_length=1)
    root_cause: RootCause
    playbook: str | None = Field(default=None, pattern=_PLAYBOOK_PATTERN)
    decision: Decision
    outcome: Outcome
    resolution: str = ""
    seconds_to_resolve: float | None = Field(default=None, ge=0)
    tags: list[str] = Field(default_factory=list)
    source: IncidentSource = "live"

    @field_validator("title")
    @classmethod
    def _single_line_title(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("title must be a single line")
        return value

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, value: list[str]) -> list[str]:
        cleaned: list[str] = []
        for tag in value:
            tag = tag.strip().lower()
            if not re.match(_TAG_PATTERN, tag):
                raise ValueError(f"invalid tag {tag!r}: lowercase letters, digits and ._:/- only")
            if tag not in cleaned:
                cleaned.append(tag)
        return cleaned

    @property
    def document(self) -> str:
        """The text that is embedded: title, then symptoms."""
        return f"{self.title}\n{self.symptoms}"


class Match(BaseModel):
    """A remembered incident and how similar it is to the query (1 = identical)."""

    model_config = ConfigDict(frozen=True)

    incident: IncidentRecord
    similarity: float
