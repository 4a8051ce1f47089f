"""``dataops enrich``, ``dataops enrich report`` and ``dataops search``."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import app.cli
from app.settings import load_settings
from pipelines.ingestion import ingest
from pipelines.runtime import Runtime
from tests.pipelines.enrichment.planted import make_planted

pytestmark = pytest.mark.slow  # loads the text model once

FILES = ("digit_00.png", "digit_01.png", "digit_02.png", "zz_shifted.png", "defect_blurry.png",
         "car.txt", "car_similar.txt", "soup.txt", "dog.txt")


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    if not any(g.name == "enrich" for g in app.cli.app.registered_groups):
        app.cli._register()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("enrich_cli")
    planted = make_planted(root / "all")
    folder = root / "small"
    folder.mkdir()
    for name in FILES:
        shutil.copy(planted.folder / name, folder / name)
    rt = Runtime.open(load_settings(home=root / "ws"))
    try:
        assert ingest(rt, str(folder), "small").accepted == len(FILES)
    finally:
        rt.close()
    return root / "ws"


def _run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app.cli.app, list(args), env={"DATAOPS_HOME": str(home), "COLUMNS": "200"})


def test_enrich_json_then_a_rerun_that_skips(home: Path) -> None:
    result = _run(home, "enrich", "small", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for key in ("run_id", "dataset", "version", "processed", "flagged", "duplicates", "auto_labeled", "embedded", "seconds"):
        assert key in data
    assert data["dataset"] == "small" and data["version"] == "v1" and data["status"] == "succeeded"
    assert data["processed"] == len(FILES)
    assert data["flagged"]["blurry"] == 1 and isinstance(data["flagged"], dict)
    assert data["embedded"] == len(FILES) - 1 and data["duplicates"] == 0
    assert [s["stage"] for s in data["stages"]] == ["quality", "dedup", "autolabel", "embed", "store"]
    again = _run(home, "enrich", "run", "small", "--version", "v1", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["processed"] == 0


def test_human_output_has_the_stage_table(home: Path) -> None:
    result = _run(home, "enrich", "small")
    assert result.exit_code == 0, result.output
    assert "Stages" in result.stdout and "quality" in result.stdout and "skipped" in result.stdout


def test_search_by_text_and_by_example(home: Path) -> None:
    by_text = _run(home, "search", "small", "a fast car on the motorway", "--k", "2", "--json")
    assert by_text.exit_code == 0, by_text.output
    hits = json.loads(by_text.stdout)
    assert len(hits) == 2 and {Path(h["source"]).name for h in hits} == {"car.txt", "car_similar.txt"}
    car = next(h["sample_id"] for h in hits if Path(h["source"]).name == "car.txt")
    like = _run(home, "search", "small", "--like", car, "--k", "1", "--json")
    assert like.exit_code == 0, like.output
    assert Path(json.loads(like.stdout)[0]["source"]).name == "car_similar.txt"
    table = _run(home, "search", "small", "hot soup")
    assert table.exit_code == 0 and "soup.txt" in table.stdout


def test_report_writes_histograms_and_thumbnails(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = _run(home, "enrich", "report", "small", "--html", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["flagged"]["blurry"] == 1
    page = out.read_text(encoding="utf-8")
    assert "<h2>blurry: 1 flagged of 5</h2>" in page
    assert page.count("<svg") >= 8 and "data:image/png;base64," in page
    assert "<pre>" in page  # texts are shown as excerpts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enrich", "nope"], "unknown dataset 'nope'"),
        (["enrich", "nope", "--json"], "unknown dataset 'nope'"),
        (["enrich", "report", "nope", "--html", "x.html"], "unknown dataset 'nope'"),
        (["search", "nope", "cars"], "unknown dataset 'nope'"),
        (["search", "small"], "give either a search text or --like SAMPLE_ID"),
        (["enrich", "small", "--version", "bad/name"], "invalid enrichment version 'bad/name'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    monkeypatch.setenv("DATAOPS_HOME", str(home))
    monkeypatch.setattr(sys, "argv", ["dataops", *args])
    with pytest.raises(SystemExit) as exit_info:
        app.cli.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dataops: error: ") and message in err, err
