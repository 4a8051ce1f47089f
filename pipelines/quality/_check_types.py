"""The check types a suite can hold, as validated specs, and the Arrow type
expressions the schema check understands."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Severity",
    "CheckSpec",
    "SchemaCheck",
    "NotNullCheck",
    "NullRateCheck",
    "UniqueCheck",
    "RangeCheck",
    "InSetCheck",
    "RegexCheck",
    "LengthCheck",
    "RowCountCheck",
    "FreshnessCheck",
    "SqlCheck",
    "SqlExpect",
    "CHECK_TYPES",
    "parse_arrow_type",
    "type_matches",
]

Severity = Literal["critical", "warning", "info"]


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: str
    name: str = ""
    severity: Severity = "critical"
    description: str = ""

    def default_name(self) -> str:
        column = getattr(self, "column", None)
        return f"{self.type}:{column}" if column else self.type


class _RowCheck(_Base):
    """A check that judges each row; ``mostly`` is the fraction that must pass."""

    column: str = Field(min_length=1)
    mostly: float = Field(1.0, gt=0.0, le=1.0)


# --- Arrow type expressions used by the schema check -------------------------
_FAMILIES = {
    "any": lambda t: True,
    "integer": pa.types.is_integer,
    "floating": pa.types.is_floating,
    "numeric": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t),
    "timestamp": pa.types.is_timestamp,
    "temporal": pa.types.is_temporal,
}
_TS = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=([^\]]+))?\]$")
_LIST = re.compile(r"^(large_list|list)<(?:item:\s*)?(.+)>$")
_DECIMAL = re.compile(r"^decimal(?:128)?\((\d+),\s*(\d+)\)$")
_UTC = {"utc", "z", "+00:00", "etc/utc", "gmt"}


def parse_arrow_type(text: str) -> pa.DataType | str:
    """An Arrow type from its string form (``string``, ``int64``,
    ``timestamp[us, tz=UTC]``, ``list<string>``, ``decimal128(10, 2)``), or a
    family name (``any integer floating numeric timestamp temporal``)."""
    s = text.strip()
    if s.lower() in _FAMILIES:
        return s.lower()
    if m := _TS.match(s):
        return pa.timestamp(m.group(1), tz=m.group(2).strip() if m.group(2) else None)
    if m := _LIST.match(s):
        inner = parse_arrow_type(m.group(2))
        if isinstance(inner, str):
            raise ValueError(f"list item type must be a concrete Arrow type, not {inner!r}")
        return pa.list_(inner)
    if m := _DECIMAL.match(s):
        return pa.decimal128(int(m.group(1)), int(m.group(2)))
    try:
        return pa.type_for_alias(s)
    except (ValueError, KeyError):
        raise ValueError(f"unknown Arrow type {text!r}") from None


def _canonical(t: pa.DataType) -> pa.DataType:
    """Representation-only differences removed: large/view strings, binaries and lists."""
    if pa.types.is_dictionary(t):
        return _canonical(t.value_type)
    if pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return pa.string()
    if pa.types.is_large_binary(t) or getattr(pa.types, "is_binary_view", lambda _: False)(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_canonical(t.value_type))
    if pa.types.is_timestamp(t) and t.tz is not None and t.tz.lower() in _UTC:
        return pa.timestamp(t.unit, tz="UTC")
    return t


def type_matches(actual: pa.DataType, expected: pa.DataType | str) -> bool:
    """Whether a column of type ``actual`` satisfies ``expected`` (a type or family)."""
    if isinstance(expected, str):
        return bool(_FAMILIES[expected](_canonical(actual)))
    return _canonical(actual).equals(_canonical(expected))


# --- the check types ----------------------------------------------------------
class SchemaCheck(_Base):
    """Columns exist with the given Arrow types; ``strict`` also forbids other columns."""

    type: Literal["schema"]
    columns: dict[str, str] = Field(min_length=1)
    strict: bool = False

    @field_validator("columns")
    @classmethod
    def _types(cls, v: dict[str, str]) -> dict[str, str]:
        for column, text in v.items():
            try:
                parse_arrow_type(str(text))
            except ValueError as exc:
                raise ValueError(f"column {column!r}: {exc}") from None
        return v

    def expected_types(self) -> dict[str, pa.DataType | str]:
        return {c: parse_arrow_type(t) for c, t in self.columns.items()}


class NotNullCheck(_RowCheck):
    """No nulls (NaN counts as null) in ``column``, or at least ``mostly`` non-null."""

    type: Literal["not_null"]


class NullRateCheck(_Base):
    """The share of nulls (NaN included) in ``column`` is at most ``max``."""

    type: Literal["null_rate"]
    column: str = Field(min_length=1)
    max: float = Field(ge=0.0, le=1.0)


class UniqueCheck(_Base):
    """No two rows share a value of ``columns`` (a compound key); rows with a
    null in the key are not judged."""

    type: Literal["unique"]
    columns: list[str] = Field(min_length=1)
    mostly: float = Field(1.0, gt=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _column_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "column" in data and "columns" not in data:
            data = {**data, "columns": [data["column"]]}
            del data["column"]
        return data

    def default_name(self) -> str:
        return f"unique:{','.join(self.columns)}"


class RangeCheck(_RowCheck):
    """Non-null values of a numeric ``column`` lie within [min, max] (each bound
    optional; ``min_inclusive``/``max_inclusive`` false make it strict). NaN fails."""

    type: Literal["range"]
    min: float | None = None
    max: float | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> RangeCheck:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class InSetCheck(_RowCheck):
    """Non-null values of ``column`` are among ``values``."""

    type: Literal["in_set"]
    values: list[str | int | float | bool] = Field(min_length=1)


class RegexCheck(_RowCheck):
    """Non-null string values of ``column`` match ``pattern`` (RE2 syntax, searched
    anywhere in the value: anchor with ``^…$`` to match the whole value)."""

    type: Literal["regex"]
    pattern: str = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import pyarrow.compute as pc

        try:
            pc.match_substring_regex(pa.array([""], pa.string()), pattern=v)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return v


class LengthCheck(_RowCheck):
    """Non-null values of a string (characters) or binary (bytes) ``column``
    have a length within [min, max] (inclusive; each bound optional)."""

    type: Literal["length"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> LengthCheck:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class RowCountCheck(_Base):
    """The table has between ``min`` and ``max`` rows (inclusive; each optional)."""

    type: Literal["row_count"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> RowCountCheck:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class FreshnessCheck(_Base):
    """The newest value of timestamp ``column`` is at most ``max_age_seconds``
    old at ``now`` (naive timestamps are read as UTC; dates as midnight UTC)."""

    type: Literal["freshness"]
    column: str = Field(min_length=1)
    max_age_seconds: float = Field(gt=0)


_OPS = {"<": "<", "lt": "<", "<=": "<=", "le": "<=", ">": ">", "gt": ">", ">=": ">=", "ge": ">="}
_OPS |= {"==": "==", "=": "==", "eq": "==", "!=": "!=", "<>": "!=", "ne": "!="}


class SqlExpect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: str
    value: float | int | str | bool

    @field_validator("op")
    @classmethod
    def _op(cls, v: str) -> str:
        if v.strip().lower() not in _OPS:
            raise ValueError(f"unknown operator {v!r}; use one of < <= > >= == !=")
        return _OPS[v.strip().lower()]


class SqlCheck(_Base):
    """A DuckDB query over the snapshot, registered as table ``snapshot``.

    Without ``expect`` the query selects the failing rows: the check passes
    when it returns none (with ``mostly``, when the rows returned are at most
    ``1 - mostly`` of the snapshot's rows); the rows returned are the failing
    examples. With ``expect: {op, value}`` the query returns one scalar (one
    row, one column) and passes when ``scalar op value`` holds.
    """

    type: Literal["sql"]
    query: str = Field(min_length=1)
    expect: SqlExpect | None = None
    mostly: float | None = Field(None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _modes(self) -> SqlCheck:
        if self.expect is not None and self.mostly is not None:
            raise ValueError("mostly applies only to a query that returns failing rows, not to expect")
        return self


CheckSpec = Annotated[
    SchemaCheck
    | NotNullCheck
    | NullRateCheck
    | UniqueCheck
    | RangeCheck
    | InSetCheck
    | RegexCheck
    | LengthCheck
    | RowCountCheck
    | FreshnessCheck
    | SqlCheck,
    Field(discriminator="type"),
]

CHECK_TYPES = (
    "schema",
    "not_null",
    "null_rate",
    "unique",
    "range",
    "in_set",
    "regex",
    "length",
    "row_count",
    "freshness",
    "sql",
)
