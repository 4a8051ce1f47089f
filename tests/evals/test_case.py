"""The case format: what loads, and malformed cases refused with a message
naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.errors import InputError
from app.taxonomy import Decision, Pipeline, RootCause
from evals import Case, load_case, load_cases, parse_case
from playbooks import PlaybookCatalog
from tests.evals._cases import case, write


@pytest.fixture(scope="module")
def ids() -> list[str]:
    return PlaybookCatalog.load().ids


def test_the_issue_example_loads(tmp_path: Path) -> None:
    path = write(tmp_path, case("recovered"))
    c = load_case(path)
    assert isinstance(c, Case)
    assert c.path == path
    assert c.pipeline == Pipeline.INGESTION
    assert c.started_at.tzinfo is not None and c.started_at.isoformat() == "2026-03-02T04:10:00+00:00"
    assert c.config == {"batch_size": 2048}
    assert [s.kind for s in c.signals] == ["event", "event", "metric", "log"]
    assert c.signals[2].labels == {"reason": "decode_error"}
    assert c.expected.root_cause == RootCause.RESOURCE_EXHAUSTION
    assert c.expected.decision == Decision.AUTO_FIX_NOTIFY
    assert c.outcome_for("reduce_batch_size") == "recovered"
    assert c.outcome_for("restore_config") == "still_failing"
    assert not c.is_control


def test_defaults_and_normalisation() -> None:
    data = case("worse", started_at="2026-03-02T08:00:00+02:00", tags=["ingestion", 2026])
    data["signals"] = list(reversed(data["signals"]))
    data["signals"][0]["labels"] = {"code": 500}
    del data["outcomes"]
    c = parse_case(data)
    assert c.started_at.isoformat() == "2026-03-02T06:00:00+00:00"
    assert [s.t for s in c.signals] == sorted(s.t for s in c.signals)
    assert c.tags == ["ingestion", "2026"]
    assert any(s.labels == {"code": "500"} for s in c.signals)
    assert c.outcome_for("retry_with_backoff") == "still_failing"
    assert c.expected.forbidden_playbooks == []


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


BAD: list[tuple[str, Any, str]] = [
    ("missing id", lambda d: _without(d, "id"), "field id: Field required"),
    ("unknown pipeline", lambda d: {**d, "pipeline": "billing"}, "field pipeline:"),
    ("bad started_at", lambda d: {**d, "started_at": "yesterday"}, "field started_at:"),
    ("unknown top-level key", lambda d: {**d, "outcome": {}}, "field outcome: Extra inputs are not permitted"),
    ("signal without t", lambda d: _without(d, "signals", 1, "t"), "field signals[1].t: Field required"),
    ("negative t", lambda d: {**d, "signals": [{**d["signals"][0], "t": -1}]}, "field signals[0].t:"),
    ("unknown kind", lambda d: {**d, "signals": [{"t": 0, "kind": "trace"}]}, "field signals[0].kind:"),
    ("metric without value", lambda d: {**d, "signals": [{"t": 0, "kind": "metric", "name": "lag"}]},
     "field signals[0].value: a metric signal needs value"),
    ("event without type", lambda d: {**d, "signals": [{"t": 0, "kind": "event", "error": "x"}]},
     "field signals[0].type: a event signal needs type"),
    ("check without status", lambda d: {**d, "signals": [{"t": 0, "kind": "check", "name": "c"}]},
     "field signals[0].status:"),
    ("bad outcome", lambda d: {**d, "outcomes": {"reduce_batch_size": "fixed"}},
     "field outcomes.reduce_batch_size: Input should be 'recovered', 'still_failing' or 'worse'"),
    ("unknown playbook in outcomes", lambda d: {**d, "outcomes": {"reduce_batchsize": "recovered"}},
     "field outcomes.reduce_batchsize: unknown playbook 'reduce_batchsize'"),
    ("unknown expected playbook", lambda d: {**d, "expected": {**d["expected"], "playbooks": ["reboot"]}},
     "field expected.playbooks[0]: unknown playbook 'reboot'"),
    ("unknown forbidden playbook", lambda d: {**d, "expected": {**d["expected"], "forbidden_playbooks": ["nuke"]}},
     "field expected.forbidden_playbooks[0]: unknown playbook 'nuke'"),
    ("unknown root cause", lambda d: {**d, "expected": {**d["expected"], "root_cause": "gremlins"}},
     "field expected.root_cause:"),
    ("unknown decision", lambda d: {**d, "expected": {**d["expected"], "decision": "autofix"}},
     "field expected.decision:"),
    ("missing resolved", lambda d: _without(d, "expected", "resolved"), "field expected.resolved: Field required"),
    ("expected and forbidden", lambda d: {**d, "expected": {**d["expected"], "forbidden_playbooks": ["reduce_batch_size"]}},
     "field expected: 'reduce_batch_size' is both expected and forbidden"),
    ("not a mapping", lambda d: ["a", "list"], "field case: expected a mapping"),
]


@pytest.mark.parametrize(("why", "mutate", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_malformed_case_names_file_and_field(
    tmp_path: Path, ids: list[str], why: str, mutate: Any, message: str
) -> None:
    path = write(tmp_path, mutate(case("recovered")), name="broken.yaml")
    with pytest.raises(InputError) as err:
        load_cases([path], playbook_ids=ids)
    assert str(err.value).startswith(f"{path}: "), str(err.value)
    assert message in str(err.value)


def test_invalid_yaml_names_the_file(tmp_path: Path, ids: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"^{path}: field case: not valid YAML"):
        load_cases([path], playbook_ids=ids)


def test_load_cases_walks_folders_recursively(tmp_path: Path) -> None:
    write(tmp_path / "a", case("recovered"))
    write(tmp_path / "a" / "deeper", case("worse"), name="worse.yml")
    write(tmp_path / "b", case("control"))
    (tmp_path / "b" / "README.md").write_text("not a case", encoding="utf-8")
    single = write(tmp_path / "elsewhere", case("bounds"), name="one.case")
    cases = load_cases([tmp_path / "a", tmp_path / "b", single])
    assert [c.id for c in cases] == ["timeout-retry-worse", "oom-recovered", "healthy-noisy-run", "oom-at-tiny-batch"]
    assert cases[2].is_control


def test_duplicate_ids_are_refused(tmp_path: Path, ids: list[str]) -> None:
    first = write(tmp_path, case("recovered"), name="a.yaml")
    second = write(tmp_path, case("recovered"), name="b.yaml")
    with pytest.raises(InputError) as err:
        load_cases([tmp_path], playbook_ids=ids)
    assert str(err.value) == f"{second}: field id: duplicate case id 'oom-recovered', already in {first}"


def test_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such case file or folder"):
        load_cases([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no case files"):
        load_cases([tmp_path / "empty"])
