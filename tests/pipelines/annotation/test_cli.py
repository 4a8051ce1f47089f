"""``dataops annotate``: run, Label Studio export/import round trip, status,
annotators, the terminal labeller and expert review, through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import app.cli
from app.errors import InputError, NotFoundError
from app.settings import load_settings
from pipelines.annotation import write_digits
from pipelines.ingestion import ingest
from pipelines.runtime import Runtime

DIGITS = ",".join(str(i) for i in range(10))
N = 8


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("annotate_cli")
    write_digits(tmp / "in", N)
    rt = Runtime.open(load_settings(home=tmp / "ws"))
    assert ingest(rt, str(tmp / "in"), "digits").accepted == N
    rt.close()
    if not any(g.name == "annotate" for g in app.cli.app.registered_groups):
        app.cli._register()
    yield tmp


def _run(home: Path, *args: str, stdin: str | None = None) -> Result:
    env = {"DATAOPS_HOME": str(home / "ws"), "COLUMNS": "200"}
    return CliRunner().invoke(app.cli.app, ["annotate", *args], env=env, input=stdin)


def _ls_export(tasks: list[dict], label: str) -> list[dict]:
    return [
        {
            "id": i,
            "data": t["data"],
            "annotations": [
                {
                    "id": 10 * i + j,
                    "completed_by": {"id": j, "email": who},
                    "result": [{"type": "choices", "from_name": "label", "to_name": "image", "value": {"choices": [label]}}],
                }
                for j, who in enumerate(("ann@x.org", "bob@x.org", "cy@x.org"))
            ],
        }
        for i, t in enumerate(tasks, start=1)
    ]


def _ensure_project(home: Path) -> None:
    if _run(home, "status", "digits-labels").exit_code != 0:
        assert _run(home, "run", "digits-labels", "--from", "digits", "--labels", DIGITS).exit_code == 0


@pytest.mark.slow
def test_run_export_import_round_trip(home: Path) -> None:
    r = _run(home, "run", "digits-labels", "--from", "digits", "--labels", DIGITS, "--json")
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert payload["run"]["read"] == payload["run"]["accepted"] == N
    assert payload["metrics"]["annotation_backlog"] == N and payload["metrics"]["autolabel_accept_rate"] == 0

    out, cfg = home / "tasks.json", home / "config.xml"
    r = _run(home, "export", "digits-labels", "--out", str(out), "--config", str(cfg))
    assert r.exit_code == 0, r.output
    assert f"{N} tasks written" in r.output
    tasks = json.loads(out.read_text())
    assert len(tasks) == N and tasks[0]["predictions"][0]["result"][0]["type"] == "choices"
    assert "<Choices" in cfg.read_text()

    export = home / "export.json"
    export.write_text(json.dumps(_ls_export(tasks[:3], "5")))
    r = _run(home, "import", "digits-labels", str(export), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["submitted"] == 9 and report["refused"] == [] and report["ready_for_consensus"] == 3

    r = _run(home, "run", "digits-labels", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["run"]["read"] == 0
    r = _run(home, "status", "digits-labels", "--json")
    st = json.loads(r.output)
    assert st["by_status"]["accepted"] == 3 and st["labels_accepted"] == 3 and st["backlog"] == N - 3
    r = _run(home, "status", "digits-labels")
    assert r.exit_code == 0 and "waiting for people" in r.output and "bob@x.org" in r.output

    r = _run(home, "annotators", "digits-labels", "--json")
    people = {a["name"]: a for a in json.loads(r.output)}
    assert set(people) == {"ann@x.org", "bob@x.org", "cy@x.org"}
    assert all(a["agreement"] == 1.0 and a["tasks"] == 3 and not a["quarantined"] for a in people.values())


def test_bad_import_file_is_one_line_and_exit_1(home: Path) -> None:
    _ensure_project(home)
    bad = home / "bad.json"
    bad.write_text("[{oops")
    r = _run(home, "import", "digits-labels", str(bad))
    assert r.exit_code == 1
    assert isinstance(r.exception, InputError) and "\n" not in str(r.exception)
    assert str(r.exception).startswith(f"{bad} is not valid JSON")
    bad.write_text(json.dumps({"tasks": []}))
    r = _run(home, "import", "digits-labels", str(bad))
    assert r.exit_code == 1 and "is a list of tasks" in str(r.exception)
    r = _run(home, "import", "digits-labels", str(home / "missing.json"))
    assert r.exit_code == 1 and str(r.exception) == f"no such file: {home / 'missing.json'}"
    r = _run(home, "status", "nope")
    assert r.exit_code == 1 and isinstance(r.exception, NotFoundError)


def test_terminal_labelling_and_review(home: Path) -> None:
    _ensure_project(home)
    before = json.loads(_run(home, "status", "digits-labels", "--json").output)["by_status"]
    r = _run(home, "label", "digits-labels", "--annotator", "zed", "--n", "3", stdin="seven\n7\ns\nq\n")
    assert r.exit_code == 0, r.output
    assert "model proposes:" in r.output and "unknown label 'seven'" in r.output
    assert "1 answers recorded for zed" in r.output
    after = json.loads(_run(home, "status", "digits-labels", "--json").output)["by_status"]
    assert after.get("in_review", 0) == before.get("in_review", 0) + 1

    r = _run(home, "review", "list", "digits-labels")
    assert r.exit_code == 0 and "no tasks waiting for expert review" in r.output
    r = _run(home, "review", "decide", "digits-labels", "t_x", "--expert", "dr")
    assert r.exit_code == 1 and "--label or --reject" in str(r.exception)
