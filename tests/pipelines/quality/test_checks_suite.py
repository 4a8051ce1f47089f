"""Suite YAML: validation errors name the file and the field; defaults."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from app.errors import InputError
from pipelines.ingestion import SAMPLE_SCHEMA
from pipelines.quality import DEFAULT_SUITE_YAML, Suite, default_suite, load_suite, parse_suite, run_suite
from pipelines.quality._check_types import parse_arrow_type, type_matches


def _error(text: str, tmp_path: Path) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_suite(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("checks:\n  - {type: nope, column: a}\n", "checks[0].type", "does not match any of the expected tags"),
        ("checks:\n  - {type: not_null, colum: a}\n", "checks[0].colum", "Extra inputs are not permitted"),
        ("checks:\n  - {type: not_null}\n", "checks[0].column", "Field required"),
        (
            "checks:\n  - {type: row_count, min: 1}\n  - {name: q, type: range, column: q, min: low}\n",
            "checks[1].min (check 'q')",
            "valid number",
        ),
        ("checks:\n  - {type: range, column: q}\n", "checks[0]", "give min, max or both"),
        ("checks:\n  - {type: range, column: q, min: 2, max: 1}\n", "checks[0]", "greater than max"),
        ("checks:\n  - {type: not_null, column: a, mostly: 1.5}\n", "checks[0].mostly", "less than or equal to 1"),
        (
            "checks:\n  - {type: not_null, column: a, severity: fatal}\n",
            "checks[0].severity",
            "'critical', 'warning' or 'info'",
        ),
        ("checks:\n  - {type: regex, column: a, pattern: '('}\n", "checks[0].pattern", "invalid regular expression"),
        (
            "checks:\n  - {type: schema, columns: {a: strng}}\n",
            "checks[0].columns",
            "column 'a': unknown Arrow type 'strng'",
        ),
        ("checks:\n  - {type: null_rate, column: a}\n", "checks[0].max", "Field required"),
        (
            "checks:\n  - {type: sql, query: 'select 1', expect: {op: '~', value: 1}}\n",
            "checks[0].expect.op",
            "unknown operator",
        ),
        (
            "checks:\n  - {type: sql, query: 'select 1', expect: {op: '>', value: 1}, mostly: 0.9}\n",
            "checks[0]",
            "mostly applies only",
        ),
        (
            "checks:\n  - {type: freshness, column: ts, max_age_seconds: 0}\n",
            "checks[0].max_age_seconds",
            "greater than 0",
        ),
        ("checks: []\n", "checks", "at least 1 item"),
        (
            "chekcs:\n  - {type: row_count, min: 1}\n",
            "chekcs",
            "Extra inputs are not permitted; checks: Field required",
        ),
        ("checks:\n  - {column: a}\n", "checks[0].type", "Unable to extract tag"),
    ],
)
def test_bad_suite_names_file_and_field(tmp_path: Path, text: str, where: str, words: str) -> None:
    message = _error(text, tmp_path)
    assert f": {where}: " in message, message
    assert words in message, message


def test_duplicate_names_and_yaml_syntax(tmp_path: Path) -> None:
    message = _error(
        "checks:\n  - {name: a, type: row_count, min: 1}\n  - {name: a, type: row_count, max: 9}\n", tmp_path
    )
    assert "checks[1].name: duplicate check name 'a'" in message
    message = _error("checks:\n  - {type: row_count, min: 1\n", tmp_path)
    assert "invalid YAML" in message and "line" in message
    assert "a mapping" in _error("- just a list\n", tmp_path)
    with pytest.raises(InputError, match="cannot read check suite"):
        load_suite(tmp_path / "missing.yaml")


def test_generated_names_are_unique() -> None:
    suite = parse_suite(
        "checks:\n"
        "  - {type: sql, query: 'select 1 where false'}\n"
        "  - {type: sql, query: 'select 2 where false'}\n"
        "  - {type: not_null, column: a}\n"
        "  - {type: unique, columns: [a, b]}\n"
        "  - {name: 'sql#2', type: row_count, min: 0}\n"
    )
    assert [c.name for c in suite.checks] == ["sql", "sql#3", "not_null:a", "unique:a,b", "sql#2"]


def test_default_suite_matches_the_ingestion_table() -> None:
    suite = default_suite("ingestion")
    assert suite.origin == "default"
    schema = next(c for c in suite.checks if c.type == "schema")
    assert list(schema.columns) == SAMPLE_SCHEMA.names
    for field in SAMPLE_SCHEMA:
        assert type_matches(field.type, parse_arrow_type(schema.columns[field.name])), field.name
    types = {(c.type, getattr(c, "column", None) or tuple(getattr(c, "columns", ()))) for c in suite.checks}
    assert {
        ("not_null", "sample_id"),
        ("unique", ("sample_id",)),
        ("not_null", "uri"),
        ("range", "quality_score"),
        ("row_count", ()),
        ("regex", "sha256"),
    } <= types
    assert "schema" in DEFAULT_SUITE_YAML
    assert [c.type for c in default_suite("annotation").checks] == ["row_count"]


def test_default_suite_on_an_empty_ingestion_table() -> None:
    result = run_suite(SAMPLE_SCHEMA.empty_table(), default_suite())
    failed = {r.name for r in result.failed}
    assert failed == {"not empty"}


def test_suite_from_mapping_and_arrow_type_spelling() -> None:
    result = run_suite(pa.table({"a": [1]}), {"checks": [{"type": "row_count", "min": 1}]})
    assert result.passed
    assert isinstance(parse_suite("checks:\n  - {type: row_count, min: 0}\n"), Suite)
    assert parse_arrow_type("timestamp[ns, tz=UTC]") == pa.timestamp("ns", tz="UTC")
    assert parse_arrow_type("list<string>") == pa.list_(pa.string())
    assert parse_arrow_type("decimal128(10, 2)") == pa.decimal128(10, 2)
    assert type_matches(pa.large_list(pa.large_string()), pa.list_(pa.string()))
    assert type_matches(pa.timestamp("us", tz="+00:00"), pa.timestamp("us", tz="UTC"))
    assert not type_matches(pa.timestamp("ms", tz="UTC"), pa.timestamp("us", tz="UTC"))
