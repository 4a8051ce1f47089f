"""Check suites: YAML per dataset, validated into typed check specs.

A suite file::

    max_examples: 5            # failing example rows kept per check (default 5)
    table: photos              # offline table to scan (default: the dataset's own)
    checks:
      - name: ids present      # optional; defaults to "<type>:<column>"
        type: not_null
        column: sample_id
        severity: critical     # critical (default) | warning | info
      - type: range
        column: quality_score
        min: 0
        max: 1
        mostly: 0.99           # at least 99 % of the non-null values must pass
        severity: warning

Check types and their parameters are the models in ``_check_types``; every
field is checked, and an unknown one is an error naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from app.errors import InputError
from app.parsing import load_yaml_mapping
from pipelines.quality._check_types import CHECK_TYPES, CheckSpec

__all__ = [
    "Suite",
    "DEFAULT_SUITE_YAML",
    "MINIMAL_SUITE_YAML",
    "default_suite",
    "load_suite",
    "parse_suite",
    "coerce_suite",
]


class Suite(BaseModel):
    """A dataset's checks."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = None
    table: str | None = None
    max_examples: int = Field(5, ge=0, le=1000)
    checks: list[CheckSpec] = Field(min_length=1)
    _origin: str = PrivateAttr("<suite>")

    @model_validator(mode="after")
    def _names(self) -> Suite:
        seen: dict[str, int] = {}
        explicit = {c.name for c in self.checks if c.name}
        for i, check in enumerate(self.checks):
            if not check.name:  # a generated name gets a suffix rather than clash
                base, k = check.default_name(), 1
                check.name = base
                while check.name in seen or check.name in explicit:
                    k += 1
                    check.name = f"{base}#{k}"
            if check.name in seen:
                raise ValueError(
                    f"checks[{i}].name: duplicate check name {check.name!r} (also checks[{seen[check.name]}]); "
                    "give each check its own name"
                )
            seen[check.name] = i
        return self

    @property
    def origin(self) -> str:
        """Where the suite came from: a file path, ``default``, ``registered``…"""
        return self._origin

    def with_origin(self, origin: str) -> Suite:
        self._origin = origin
        return self


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for i, p in enumerate(parts):
        if isinstance(p, int):
            out += f"[{p}]"
        elif i >= 2 and parts[0] == "checks" and isinstance(parts[i - 1], int) and p in CHECK_TYPES:
            continue  # the union's tag: the check's own type, not a field
        else:
            out += f".{p}" if out else str(p)
    return out


def _check_label(raw: Any, parts: tuple[int | str, ...]) -> str:
    if len(parts) >= 2 and parts[0] == "checks" and isinstance(parts[1], int) and isinstance(raw, dict):
        checks = raw.get("checks")
        if isinstance(checks, list) and parts[1] < len(checks) and isinstance(checks[parts[1]], dict):
            name = checks[parts[1]].get("name")
            if name:
                return f" (check {name!r})"
    return ""


def parse_suite(text: str, *, origin: str = "<suite>") -> Suite:
    """Validate suite YAML held in memory; ``origin`` names it in the
    ``InputError`` message (``origin: checks[2].max: …``)."""
    raw = load_yaml_mapping(text, origin=origin, what="check suite (with a 'checks' list)")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        # A misspelt field shows as "extra" plus "required": name the misspelling first.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        parts = []
        for err in errors[:3]:
            loc = _loc(tuple(err["loc"]) + (("type",) if err["type"].startswith("union_tag") else ()))
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}{_check_label(raw, tuple(err['loc']))}: {msg}" if loc else msg)
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise InputError(f"{origin}: {'; '.join(parts)}{more}") from None
    return suite.with_origin(origin)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file; a bad one raises ``InputError`` naming file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read check suite: {exc}") from None
    return parse_suite(text, origin=str(path))


def coerce_suite(suite: Suite | dict[str, Any] | str | Path) -> Suite:
    """A :class:`Suite` from a suite, a mapping, a file path or YAML text."""
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, dict):
        return parse_suite(yaml.safe_dump(suite), origin="<mapping>")
    if isinstance(suite, Path):
        return load_suite(suite)
    if isinstance(suite, str):
        if "\n" not in suite and suite.strip().lower().endswith((".yaml", ".yml")):
            return load_suite(suite)
        return parse_suite(suite)
    raise InputError(f"a check suite must be a Suite, a mapping, a path or YAML text, not {type(suite).__name__}")


# The suite every ingestion dataset gets until one is registered for it.
# Its schema lists the ingestion table's columns (SAMPLE_SCHEMA); a test keeps them in step.
DEFAULT_SUITE_YAML = """\
# Default checks for an ingestion dataset (SAMPLE_SCHEMA).
checks:
  - name: schema
    type: schema
    strict: false
    columns:
      sample_id: string
      dataset: string
      source: string
      uri: string
      modality: string
      sha256: string
      phash: int64
      phash_hex: string
      quality_score: float64
      size_bytes: int64
      metadata: string
      run_id: string
      ingested_at: "timestamp[us, tz=UTC]"
  - {name: sample_id not null, type: not_null, column: sample_id}
  - {name: sample_id unique, type: unique, columns: [sample_id]}
  - {name: uri not null, type: not_null, column: uri}
  - {name: "quality_score in [0, 1]", type: range, column: quality_score, min: 0, max: 1, severity: warning}
  - {name: not empty, type: row_count, min: 1}
  - {name: sha256 is hex, type: regex, column: sha256, pattern: "^[0-9a-f]{64}$"}
"""

# The suite other pipelines' datasets get until one is registered for them.
MINIMAL_SUITE_YAML = """\
checks:
  - {name: not empty, type: row_count, min: 1}
"""


def default_suite(pipeline: str = "ingestion") -> Suite:
    """The suite a dataset of ``pipeline`` gets when none is registered."""
    if pipeline == "ingestion":
        return parse_suite(DEFAULT_SUITE_YAML, origin="default").with_origin("default")
    return parse_suite(MINIMAL_SUITE_YAML, origin="default").with_origin("default")
