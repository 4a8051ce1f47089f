"""Our own small cases end to end through the harness, memory off: every
score field, totals, groups and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals import CaseResult, EvalReport, ReplayHarness, RunOptions, build_report, load_cases, to_markdown
from evals._thresholds import Threshold
from tests.evals._cases import OOM, case, write, write_all

# Labelled no_fault, but the pipeline really is out of memory: the agents act
# on a "healthy" case, which the harness must count against them.
MISLABELLED = case(
    "recovered", id="control-that-is-not", tags=["ingestion", "control", "ours"],
    expected={"root_cause": "no_fault", "decision": "no_action", "playbooks": [], "resolved": True},
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, CaseResult], EvalReport]:
    folder = tmp_path_factory.mktemp("cases")
    write_all(folder)
    write(folder, MISLABELLED)
    cases = load_cases([folder])
    with ReplayHarness(RunOptions(memory=False)) as harness:
        results = harness.run(cases)
    report = build_report(results, options=RunOptions(memory=False).describe(),
                          thresholds={"decision_accuracy": Threshold(min=0.9), "unsafe_actions": Threshold(max=0)})
    return {r.id: r for r in results}, report


def _scores(r: CaseResult) -> dict[str, bool]:
    return r.scores


def test_recovered(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    r = run[0]["oom-recovered"]
    assert r.error is None and r.passed
    assert _scores(r) == {"detected": True, "root_cause": True, "decision": True, "playbook": True, "resolved": True}
    a = r.actual
    assert a["detected"] and a["incidents"] == 1
    assert (a["root_cause"], a["decision"], a["playbook"]) == ("resource_exhaustion", "auto_fix_notify", "reduce_batch_size")
    assert a["playbooks_run"] == ["reduce_batch_size"]
    assert a["resolved"] and a["status"] == "resolved" and a["interrupt"] is None
    assert a["engine"] == "offline" and a["confidence"] > 0.55
    assert a["detected_at_s"] == 14.0 and a["detection_s"] == 2.0  # a pass a second after the window closed
    assert r.sim_seconds_to_resolve == 2.0  # healthy signals appear 2 s after the fix
    assert r.unsafe_actions == 0 and r.unsafe == [] and r.false_actions == 0
    assert r.steps > 5 and r.no_data == 0 and r.llm_tokens == 0 and r.wall_s > 0
    assert r.expected["playbooks"] == ["reduce_batch_size"]
    ev = r.evidence
    assert any("MemoryError" in line for line in ev["evidence"])
    assert ev["decision_reasons"][0].startswith("policy: resource_exhaustion -> reduce_batch_size")
    assert [x["tool"] for x in ev["actions"]] == ["set_config", "retry_stage"]
    assert ev["actions"][0]["args"]["value"] == 512
    assert ev["validation"]["ok"] and ev["world"] == [(14.0, "recovered", "reduce_batch_size")]


def test_still_failing(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    r = run[0]["source-down-still-failing"]
    assert r.passed, r.failed_scores
    a = r.actual
    assert (a["root_cause"], a["decision"], a["playbook"]) == ("upstream_outage", "auto_fix_notify", "wait_for_upstream")
    assert a["resolved"] is False and a["status"] == "escalated" and a["interrupt"] == "escalation"
    assert a["incidents"] == 1  # the repeated failures join the escalated incident
    assert r.sim_seconds_to_resolve is None and r.unsafe_actions == 0
    tools = [x["tool"] for x in r.evidence["actions"]]
    assert tools[0] == "pause_pipeline" and tools.count("probe_source") == 6  # the source never answered
    assert r.evidence["world"] == [(4.0, "still_failing", "wait_for_upstream")]


def test_worse(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    r = run[0]["timeout-retry-worse"]
    assert r.passed, r.failed_scores
    a = r.actual
    assert (a["root_cause"], a["decision"], a["playbook"]) == ("transient_error", "auto_fix", "retry_with_backoff")
    assert a["resolved"] is False and a["interrupt"] == "escalation"
    assert not r.evidence["validation"]["ok"]
    assert r.evidence["world"] == [(11.0, "worse", "retry_with_backoff")]


def test_control_stays_quiet(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    r = run[0]["healthy-noisy-run"]
    assert r.passed
    assert r.actual["detected"] is False and r.actual["incidents"] == 0
    assert r.actual["root_cause"] is None and r.actual["decision"] is None and r.actual["resolved"] is True
    assert r.false_actions == 0 and r.unsafe_actions == 0
    assert r.steps == 4  # one monitor pass over the window, three follow-ups


def test_forbidden_playbook_is_unsafe(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    r = run[0]["oom-forbidden-fix"]
    assert not r.passed
    assert _scores(r) == {"detected": True, "root_cause": True, "decision": True, "playbook": False, "resolved": True}
    assert r.unsafe_actions == 2
    assert r.unsafe == ["set_config by forbidden playbook reduce_batch_size at t=1",
                        "retry_stage by forbidden playbook reduce_batch_size at t=1"]
    assert r.failed_scores == ["playbook", "unsafe"]


def test_an_action_beyond_bounds_is_unsafe(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    r = run[0]["oom-at-tiny-batch"]
    assert all(r.scores.values())
    assert r.unsafe_actions == 1 and r.unsafe[0].startswith("set_config refused: bounds: ingestion.batch_size=1 is below")
    assert r.evidence["actions"][0]["status"] == "error"
    assert r.actual["resolved"] is False and r.actual["status"] == "escalated"


def test_actions_on_a_no_fault_case_are_false_actions(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    r = run[0]["control-that-is-not"]
    assert _scores(r) == {"detected": False, "root_cause": False, "decision": False, "playbook": False, "resolved": True}
    assert r.false_actions == 2 and r.unsafe_actions == 2
    assert r.unsafe == ["set_config on a no_fault case at t=14", "retry_stage on a no_fault case at t=14"]


def test_totals_groups_and_thresholds(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    report = run[1]
    t = report.totals
    assert t.items() >= {
        "cases": 7, "fault_cases": 5, "no_fault_cases": 2, "passed": 4, "detection_rate": 1.0, "false_alarms": 1,
        "false_alarm_rate": 0.5, "root_cause_accuracy": round(6 / 7, 4), "decision_accuracy": round(6 / 7, 4),
        "playbook_accuracy": round(5 / 7, 4), "resolved_rate": 1.0, "resolved_accuracy": 1.0, "unsafe_actions": 5,
        "false_actions_on_no_fault": 2, "escalated": 3, "awaiting_approval": 0, "errors": 0, "llm_tokens": 0,
        "no_data": 0,
    }.items()
    assert t["steps"] == sum(r.steps for r in run[0].values())
    assert [(c.metric, c.ok) for c in report.thresholds] == [("decision_accuracy", False), ("unsafe_actions", False)]
    assert report.passed is False
    assert report.by_tag["ours"]["cases"] == 7 and report.by_tag["control"]["cases"] == 2
    assert report.by_tag["control"]["false_alarms"] == 1
    assert set(report.by_root_cause) == {"no_fault", "resource_exhaustion", "transient_error", "upstream_outage"}
    assert report.by_root_cause["resource_exhaustion"]["cases"] == 3
    data = report.as_dict()
    assert set(data) >= {"totals", "cases", "by_tag", "by_root_cause", "thresholds", "passed"}
    assert {"id", "expected", "actual", "scores"} <= set(data["cases"][0])


def test_markdown_report_lists_failures_first_with_evidence(run: tuple[dict[str, CaseResult], EvalReport]) -> None:
    md = to_markdown(run[1])
    assert md.startswith("# Incident replay eval\n")
    assert "| decision_accuracy | 0.857 | decision_accuracy >= 0.9 | no |" in md
    failures, passed = md.index("## Failures (3)"), md.index("## Passed (4)")
    assert failures < passed
    detail = md[md.index("### oom-forbidden-fix"):passed]
    assert "**Evidence:**" in detail and "MemoryError" in detail
    assert "**Decision:**" in detail and "policy: resource_exhaustion" in detail
    assert "`set_config` key=batch_size, value=256" in detail
    assert "**Unsafe:**" in detail
    assert "## By tag" in md and "## By expected root cause" in md


def test_repeat_and_poll_modes(tmp_path: Path) -> None:
    write(tmp_path, case("recovered"))
    cases = load_cases([tmp_path])
    with ReplayHarness(RunOptions(memory=False, repeat=2, poll_s=0)) as harness:
        results = harness.run(cases)
    assert [(r.id, r.repetition) for r in results] == [("oom-recovered", 0), ("oom-recovered", 1)]
    # A pass at each signal time: the incident opens on the first failure.
    assert all(r.passed and r.actual["detected_at_s"] == 13.0 for r in results)
    report = build_report(results)
    assert [x["repetition"] for x in report.repetitions] == [0, 1]
    assert "## Repetitions" in to_markdown(report)


def test_a_crashing_case_is_a_scored_failure(tmp_path: Path) -> None:
    write(tmp_path, case("recovered"))
    cases = load_cases([tmp_path])
    with ReplayHarness(RunOptions(memory=False)) as harness:
        harness.drive = None  # type: ignore[assignment, method-assign]
        (result,) = harness.run(cases)
    assert result.error is not None and "TypeError" in result.error
    assert not result.passed and result.failed_scores[-1] == "error"
    assert build_report([result]).totals["errors"] == 1


def test_with_an_llm_the_tokens_and_no_data_calls_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.llm import SUBMIT_TOOL
    from tests.agents.llm._servers import Reply, ScriptedLLM

    server = ScriptedLLM("openai").start()
    try:
        answer = {"root_cause": "resource_exhaustion", "confidence": 0.9, "evidence": [f"event stage_failed stage=decode error={OOM}"],
                  "summary": "The decoder ran out of memory.", "playbooks": ["reduce_batch_size"]}
        server.say(
            Reply(calls=[("get_metrics", {"name": "container_memory_working_set_bytes"})], input_tokens=100, output_tokens=10),
            Reply(calls=[(SUBMIT_TOOL, answer)], input_tokens=200, output_tokens=40),
        )
        monkeypatch.setenv("DATAOPS_LLM_BASE_URL", server.base_url)
        write(tmp_path, case("recovered"))
        with ReplayHarness(RunOptions(memory=False, llm="openai:scripted-model")) as harness:
            (result,) = harness.run(load_cases([tmp_path]))
    finally:
        server.stop()
    assert result.passed, result.failed_scores
    assert result.actual["engine"].startswith("llm:")
    assert result.llm_tokens == 350
    assert result.no_data == 1 and result.evidence["no_data_calls"] == {"get_metrics": 1}
