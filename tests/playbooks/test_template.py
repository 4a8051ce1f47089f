"""Step-argument templates: native values, interpolation, and expressions
the safe evaluator refuses."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import PlaybookError
from pipelines.ingestion import IngestionConfig
from playbooks import evaluate, render

CTX: dict[str, Any] = {
    "config": {"batch_size": 4096, "workers": 3, "retry_backoff_s": 0.2},
    "pipeline": "ingestion",
    "dataset": "cams",
    "incident": {"id": "inc-42"},
    "attempt": 2,
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("${config.batch_size}", 4096),
        ("${max(8, config.batch_size // 4)}", 1024),
        ("${min(16, config.workers * 2)}", 6),
        ("${(config.batch_size + 3) // 4}", 1024),
        ("${config.retry_backoff_s * 10}", 2.0),
        ("${attempt - 1}", 1),
        ("${-attempt}", -2),
        ("${config.batch_size % 1000}", 96),
        ("${config.batch_size / 2}", 2048.0),
        ("${round(2.6)}", 3),
        ("${round(1.2345, 2)}", 1.23),
        ("${int(3.9)}", 3),
        ("${int('12')}", 12),
        ("${float('1.5')}", 1.5),
        ("${config.batch_size > 1000}", True),
        ("${1 < attempt <= 2}", True),
        ("${pipeline == 'ingestion'}", True),
        ("${pipeline}", "ingestion"),
        ("${'a' + 'b'}", "ab"),
        ("${  attempt  }", 2),
    ],
)
def test_whole_string_gives_the_native_value(template: str, expected: Any) -> None:
    out = render(template, CTX)
    assert out == expected
    assert type(out) is type(expected)


def test_parts_are_interpolated_as_text() -> None:
    assert render("incident ${incident.id} on ${pipeline}/${dataset}, try ${attempt}", CTX) == (
        "incident inc-42 on ingestion/cams, try 2"
    )
    assert render("batch ${config.batch_size // 4}!", CTX) == "batch 1024!"
    assert render("dataset ${dataset}", {**CTX, "dataset": None}) == "dataset -"
    assert render("no template here, $ and {braces}", CTX) == "no template here, $ and {braces}"


def test_renders_nested_dicts_and_lists_and_leaves_other_values() -> None:
    value = {"a": ["${attempt}", {"b": "${pipeline}"}], "n": 5, "f": None, "t": True}
    assert render(value, CTX) == {"a": [2, {"b": "ingestion"}], "n": 5, "f": None, "t": True}


def test_config_may_be_a_pydantic_model() -> None:
    ctx = {**CTX, "config": IngestionConfig(batch_size=256)}
    assert render("${max(8, config.batch_size // 4)}", ctx) == 64


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('x')",
        "().__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "config.__class__",
        "config._secret",
        "open('/etc/passwd')",
        "eval('1')",
        "getattr(config, 'batch_size')",
        "pipeline.upper()",
        "pipeline.strip",
        "config['batch_size']",
        "lambda: 1",
        "[x for x in (1, 2)]",
        "{1: 2}",
        "2 ** 100",
        "'a' * 3",
        "attempt and 1",
        "not attempt",
        "max(*[1, 2])",
        "round(number=1.5)",
        "unknown_name",
        "config.no_such_key",
        "attempt / 0",
        "min()",
        "x := 1",
        "1 if attempt else 2",
        "",
    ],
)
def test_refused_expressions_raise_playbook_error_naming_them(expr: str) -> None:
    with pytest.raises(PlaybookError) as info:
        render("${" + expr + "}", CTX)
    assert "template ${" in str(info.value)
    assert expr.strip()[:20] in str(info.value)
    assert "\n" not in str(info.value)


def test_malicious_expressions_run_nothing(tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    for expr in (
        f"__import__('os').system('touch {marker}')",
        f"__import__('pathlib').Path('{marker}').touch()",
        "().__class__.__base__.__subclasses__()",
    ):
        with pytest.raises(PlaybookError):
            evaluate(expr, CTX)
    assert not marker.exists()


def test_evaluate_rejects_overlong_expressions() -> None:
    with pytest.raises(PlaybookError, match="longer than"):
        evaluate("1 + " * 200 + "1", CTX)
