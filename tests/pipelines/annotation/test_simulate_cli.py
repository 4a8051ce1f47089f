"""``dataops annotate simulate``: JSON, tables, the plot, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.cli._annotate_sim import register
from app.errors import InputError


def _cli() -> typer.Typer:
    app = typer.Typer()
    group = typer.Typer()
    register(group)
    app.add_typer(group, name="annotate")
    return app


def test_json_for_one_run() -> None:
    result = CliRunner().invoke(_cli(), ["annotate", "simulate", "--budget", "40", "--batch-size", "20", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["strategy"] == "uncertainty" and report["labels_bought"] == 40
    assert [p["labels"] for p in report["curve"]] == [20, 40]
    assert 0.0 <= report["model_accuracy"] <= 1.0 and report["cost"] >= 120


def test_compare_tables_and_plot(tmp_path: Path) -> None:
    plot = tmp_path / "curves.png"
    args = ["annotate", "simulate", "--budget", "40", "--batch-size", "20", "--compare", "--plot", str(plot)]
    result = CliRunner().invoke(_cli(), args, env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for strategy in ("uncertainty", "diversity", "random", "mixed"):
        assert strategy in result.stdout
    assert "random's final accuracy" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_json_has_every_run_and_the_savings() -> None:
    args = ["annotate", "simulate", "--budget", "20", "--compare", "--seeds", "2", "--json"]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["reports"]) == 8 and data["seeds"] == [0, 1]
    assert set(data["curves"]) == set(data["savings"]) == {"uncertainty", "diversity", "random", "mixed"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "cifar"], "unknown dataset"),
        (["--budget", "0"], "at least 1"),
        (["--strategy", "newest"], "unknown strategy"),
        (["--seeds", "0"], "at least 1"),
    ],
)
def test_bad_input_is_one_clear_error(args: list[str], message: str) -> None:
    result = CliRunner().invoke(_cli(), ["annotate", "simulate", *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError) and message in str(result.exception)


def test_unwritable_plot_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    args = ["annotate", "simulate", "--budget", "20", "--json", "--plot", str(tmp_path / "file" / "plot.png")]
    result = CliRunner().invoke(_cli(), args)
    assert isinstance(result.exception, InputError) and "cannot write the plot" in str(result.exception)
