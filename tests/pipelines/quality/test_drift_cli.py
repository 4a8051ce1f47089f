"""``dataops drift`` on Parquet files and on offline-store snapshots, and its HTML report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

import app.cli
from app.settings import load_settings
from pipelines.quality import detect_drift, load_frame, render_html
from pipelines.runtime import Runtime

N = 5000


@pytest.fixture(scope="module", autouse=True)
def _commands() -> None:
    if not any(c.name == "drift" for c in app.cli.app.registered_commands):
        app.cli._register()


def _tables(seed: int = 0) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    missing = rng.normal(size=N)
    missing[rng.random(N) < 0.3] = np.nan
    ref = pa.table(
        {
            "brightness": rng.normal(0.5, 0.1, N),
            "width": rng.choice([640, 1280], N),
            "camera": rng.choice(["a", "b"], N),
            "blur": rng.normal(size=N),
            "steady": rng.normal(size=N),
            "label": rng.choice(["cat", "dog"], N, p=[0.5, 0.5]),
        }
    )
    cur = pa.table(
        {
            "brightness": rng.normal(0.3, 0.1, N),
            "width": rng.choice([640, 1280, 3840], N),
            "camera": rng.choice(["a", "b", "c"], N),
            "blur": missing,
            "steady": rng.normal(size=N),
            "label": rng.choice(["cat", "dog"], N, p=[0.8, 0.2]),
        }
    )
    return ref, cur


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("drift_cli")
    ref, cur = _tables()
    pq.write_table(ref, folder / "ref.parquet")
    pq.write_table(cur, folder / "cur.parquet")
    return folder / "ref.parquet", folder / "cur.parquet"


def _run(*args: str, home: Path | None = None) -> Result:
    env = {"COLUMNS": "240"}
    if home is not None:
        env["DATAOPS_HOME"] = str(home)
    return CliRunner().invoke(app.cli.app, ["drift", *args], env=env)


def test_json_on_parquet_files(files: tuple[Path, Path]) -> None:
    ref, cur = files
    result = _run("--reference", str(ref), "--current", str(cur), "--label", "label", "--json")
    assert result.exit_code == 0, result.output  # drift is a finding, not an error
    data = json.loads(result.output)
    assert data["reference_rows"] == N and data["current_rows"] == N
    by_name = {c["name"]: c for c in data["columns"]}
    assert set(by_name) == {"brightness", "width", "camera", "blur", "steady"}
    for c in data["columns"]:
        assert {"name", "test", "statistic", "p_value", "psi", "drifted", "severity"} <= set(c)
    assert by_name["brightness"]["test"] == "ks" and by_name["brightness"]["severity"] == "critical"
    assert by_name["camera"]["test"] == "chi2" and by_name["camera"]["drifted"]
    assert by_name["blur"]["drifted"] and by_name["blur"]["missing_cur"] == pytest.approx(0.3, abs=0.02)
    assert not by_name["steady"]["drifted"]
    assert data["drifted_share"] == pytest.approx(0.8) and data["dataset_drift"] is True
    assert data["label_drift"]["name"] == "label" and data["label_drift"]["drifted"] is True


def test_table_output_and_columns(files: tuple[Path, Path]) -> None:
    ref, cur = files
    result = _run("-r", str(ref), "-c", str(cur), "--columns", "steady, brightness")
    assert result.exit_code == 0, result.output
    assert "Drift:" in result.output and "brightness" in result.output and "steady" in result.output
    assert "camera" not in result.output
    assert "1 of 2 columns drifted" in result.output and "dataset drift" in result.output


def test_html_report_has_an_svg_per_drifted_column(files: tuple[Path, Path], tmp_path: Path) -> None:
    ref, cur = files
    out = tmp_path / "reports" / "drift.html"
    result = _run("-r", str(ref), "-c", str(cur), "--label", "label", "--html", str(out), "--json")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    data = json.loads(result.output)
    drifted = [c["name"] for c in data["columns"] if c["drifted"]] + ["label"]
    charts = re.findall(r'<svg [^>]*data-column="([^"]+)"', page)
    assert sorted(charts) == sorted(drifted)
    assert (
        page.startswith("<!DOCTYPE html>")
        and "<script" not in page
        and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert "Dataset drift" in page and "missing rate 0.0% →" in page


def test_render_html_draws_histograms_and_bars() -> None:
    ref, cur = _tables(1)
    report = detect_drift(ref, cur, columns=["brightness", "camera", "steady"])
    page = render_html(report, ref, cur)
    assert page.count("<svg ") == 2  # brightness and camera drifted; steady did not
    camera = page.split('data-column="camera"')[1].split("</svg>")[0]
    assert ">c<" in camera.replace("</text>", "<")  # the new category has its bar label


def test_config_file_overrides_thresholds(files: tuple[Path, Path], tmp_path: Path) -> None:
    ref, cur = files
    cfg = tmp_path / "drift.yaml"
    cfg.write_text("dataset_drift_share: 0.9\nmissing_warning: 0.5\nmissing_critical: 0.6\n")
    result = _run("-r", str(ref), "-c", str(cur), "--config", str(cfg), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dataset_drift"] is False and data["config"]["dataset_drift_share"] == 0.9
    assert not {c["name"]: c for c in data["columns"]}["blur"]["drifted"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-r", "missing.parquet", "-c", "missing.parquet"], "no such Parquet file or folder: missing.parquet"),
        (["-r", "not a spec!", "-c", "x.parquet"], "is neither a Parquet path nor DATASET[@SNAPSHOT]"),
        (["-r", "{ref}", "-c", "{cur}", "--columns", "nope"], "'nope' in neither table"),
        (["-r", "{ref}", "-c", "{cur}", "--bins", "1"], "invalid drift config: bins"),
        (["-r", "{bad}", "-c", "{cur}"], "cannot read Parquet"),
    ],
)
def test_bad_input_is_one_error_line(
    files: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    paths = {"ref": str(files[0]), "cur": str(files[1]), "bad": str(bad)}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAOPS_HOME", str(tmp_path / "ws"))
    monkeypatch.setattr(sys, "argv", ["dataops", "drift", *(a.format(**paths) for a in args)])
    with pytest.raises(SystemExit) as exit_info:
        app.cli.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dataops: error: ") and message in err, err


def test_dataset_snapshots(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    rt = Runtime.open(load_settings(home=home))
    try:
        ref, cur = _tables(2)
        rt.offline.ensure_table("frames", ref.schema)
        first = rt.offline.append("frames", ref, run_id="run-1")
        rt.offline.append("frames", cur, run_id="run-2")
        assert load_frame(f"frames@{first}", rt).num_rows == N
        assert load_frame("frames", rt).num_rows == 2 * N
    finally:
        rt.close()
    result = _run("-r", f"frames@{first}", "-c", "frames", "--json", home=home)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["reference_rows"] == N and data["current_rows"] == 2 * N
    assert {c["name"] for c in data["columns"] if c["drifted"]} >= {"brightness", "camera"}
    missing = _run("-r", "frames@123", "-c", "frames", home=home)
    assert missing.exit_code == 1 and "no snapshot 123" in str(missing.exception)
    unknown = _run("-r", "nothing", "-c", "frames", home=home)
    assert unknown.exit_code == 1 and "no offline table 'nothing'" in str(unknown.exception)
