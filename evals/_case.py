"""Incident cases as data: one YAML file per case, validated into :class:`Case`.

The format is stable (cases are written outside this repository too)::

    id: ingestion-oom-after-batch-increase
    tags: [ingestion, medium]
    pipeline: ingestion
    started_at: "2026-03-02T04:10:00Z"
    config: {batch_size: 4096}
    signals:
      - {t: 0, kind: event, type: stage_failed, stage: decode, error: "MemoryError: ..."}
    outcomes: {reduce_batch_size: recovered, default: still_failing}
    expected:
      root_cause: resource_exhaustion
      decision: auto_fix_notify
      playbooks: [reduce_batch_size]
      forbidden_playbooks: [rollback_snapshot]
      resolved: true

A malformed case raises :class:`InputError` naming the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.errors import InputError
from app.taxonomy import Decision, Pipeline, RootCause
from tools import Signal

__all__ = ["Case", "CaseSignal", "Expected", "OutcomeName", "load_case", "load_cases", "parse_case"]

OutcomeName = Literal["recovered", "still_failing", "worse"]

_NEEDS = {"event": ("type",), "metric": ("name", "value"), "log": ("level", "message"), "check": ("name", "status")}


class CaseSignal(Signal):
    """A recorded signal: ``t`` (seconds from the case start) and ``kind``
    are required, and each kind needs its own fields (an event its ``type``,
    a metric ``name`` and ``value``, a log ``level`` and ``message``, a check
    ``name`` and ``status``). Other keys are kept as the signal's extras."""

    t: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _string_labels(cls, data: Any) -> Any:
        # YAML turns `code: 500` into an int; labels are strings.
        if isinstance(data, dict) and isinstance(data.get("labels"), dict):
            data = {**data, "labels": {str(k): str(v) for k, v in data["labels"].items()}}
        return data

    @model_validator(mode="after")
    def _kind_fields(self) -> CaseSignal:
        missing = [f for f in _NEEDS[self.kind] if getattr(self, f) in (None, "")]
        if missing:
            raise ValueError(f"a {self.kind} signal needs {missing[0]}" + (f" and {missing[1]}" if missing[1:] else ""))
        return self


class Expected(BaseModel):
    """What the agents should make of the case."""

    model_config = ConfigDict(extra="forbid")

    root_cause: RootCause
    decision: Decision
    playbooks: list[str] = Field(description="Any one of these is right; [] when no action is right.")
    forbidden_playbooks: list[str] = Field(default_factory=list, description="Playbooks that must not run.")
    resolved: bool

    @model_validator(mode="after")
    def _disjoint(self) -> Expected:
        both = sorted(set(self.playbooks) & set(self.forbidden_playbooks))
        if both:
            raise ValueError(f"{both[0]!r} is both expected and forbidden")
        return self


class Case(BaseModel):
    """One recorded incident (or a healthy control) and what should be made of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
    tags: list[str] = Field(default_factory=list)
    pipeline: Pipeline
    started_at: datetime
    description: str = ""
    config: dict[str, JsonValue] = Field(default_factory=dict)
    signals: list[CaseSignal] = Field(default_factory=list)
    outcomes: dict[str, OutcomeName] = Field(default_factory=dict)
    expected: Expected
    _path: Path | None = PrivateAttr(default=None)

    @field_validator("started_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return [str(v) for v in value] if isinstance(value, list) else value

    @field_validator("signals")
    @classmethod
    def _in_time_order(cls, value: list[CaseSignal]) -> list[CaseSignal]:
        return sorted(value, key=lambda s: s.t)

    @property
    def path(self) -> Path | None:
        """The file the case was read from (None when built in memory)."""
        return self._path

    @property
    def is_control(self) -> bool:
        """A no_fault case: the agents must stay quiet."""
        return self.expected.root_cause == RootCause.NO_FAULT

    def outcome_for(self, playbook: str) -> str:
        return self.outcomes.get(playbook, self.outcomes.get("default", "still_failing"))

    def referenced_playbooks(self) -> list[tuple[str, str]]:
        """(field, playbook id) for every playbook the case names."""
        refs = [(f"outcomes.{k}", k) for k in self.outcomes if k != "default"]
        refs += [(f"expected.playbooks[{i}]", p) for i, p in enumerate(self.expected.playbooks)]
        refs += [(f"expected.forbidden_playbooks[{i}]", p) for i, p in enumerate(self.expected.forbidden_playbooks)]
        return refs


def _field(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "case"


def parse_case(data: Any, *, where: str = "<case>", playbook_ids: Iterable[str] | None = None) -> Case:
    """Validate one case's data; :class:`InputError` names ``where`` and the field."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: field case: expected a mapping of case fields, got {type(data).__name__}")
    try:
        case = Case.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        needs = re.match(r"a \w+ signal needs (\w+)", msg)
        if needs:
            loc.append(needs.group(1))
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        got = f" (got {err['input']!r})" if err["type"] not in ("missing", "extra_forbidden") and not isinstance(
            err.get("input"), dict | list) else ""
        raise InputError(f"{where}: field {_field(loc)}: {msg}{got}{more}") from None
    if playbook_ids is not None:
        known = set(playbook_ids)
        for field, pid in case.referenced_playbooks():
            if pid not in known:
                raise InputError(f"{where}: field {field}: unknown playbook {pid!r}; known: {', '.join(sorted(known))}")
    return case


def load_case(path: Path, *, playbook_ids: Iterable[str] | None = None) -> Case:
    """Read and validate one case file."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the case: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: field case: not valid YAML: {exc}") from exc
    case = parse_case(data, where=str(path), playbook_ids=playbook_ids)
    case._path = path
    return case


def case_files(paths: Iterable[Path | str]) -> list[Path]:
    """The case files named by ``paths``: files as given, folders searched
    recursively for ``*.yaml`` and ``*.yml`` (sorted)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".yaml", ".yml"))
            if not found:
                raise InputError(f"{p}: no case files (*.yaml, *.yml) in this folder")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"{p}: no such case file or folder")
    return out


def load_cases(paths: Iterable[Path | str], *, playbook_ids: Iterable[str] | None = None) -> list[Case]:
    """Every case in ``paths`` (files, or folders searched recursively).

    Playbook ids the cases name are checked against ``playbook_ids``
    (default: the shipped catalogue). Duplicate case ids are refused.
    """
    files = case_files(paths)
    if playbook_ids is None:
        from playbooks import PlaybookCatalog

        playbook_ids = PlaybookCatalog.load().ids
    ids = list(playbook_ids)
    cases: list[Case] = []
    seen: dict[str, Path | None] = {}
    for file in files:
        case = load_case(file, playbook_ids=ids)
        if case.id in seen:
            raise InputError(f"{file}: field id: duplicate case id {case.id!r}, already in {seen[case.id]}")
        seen[case.id] = file
        cases.append(case)
    if not cases:
        raise InputError("no cases given")
    return cases
