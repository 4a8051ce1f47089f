"""The replay backend: observe tools answer from the case at the case clock,
in the live backend's shapes; what cannot be answered is no_data and
counted; the first mutating action of a playbook decides the world's future."""

from __future__ import annotations

from typing import Any

import pytest

from agents import SimClock
from evals import Case, parse_case
from tests.evals._cases import case
from tools import ReplayBackend, Signal, ToolCall, playbook_of_key


def world(name: str, **changes: Any) -> tuple[Case, SimClock, ReplayBackend]:
    c = parse_case(case(name, **changes))
    clock = SimClock(start=c.started_at)
    return c, clock, ReplayBackend(c, clock)


def call(backend: ReplayBackend, tool: str, idem: str | None = None, /, **args: Any) -> Any:
    scope = {"pipeline": "ingestion"} if tool not in ("get_metrics", "recall_incidents") else {}
    return backend.handle(ToolCall(tool=tool, args={**scope, **args}, idempotency_key=idem, incident_id="inc-1"))


def signals(backend: ReplayBackend, since: float = 0.0, **args: Any) -> list[Signal]:
    res = call(backend, "get_signals", since_t=since, **args)
    return [Signal.model_validate(s) for s in (res.data or [])]


def test_observe_answers_only_what_is_visible_at_the_clock() -> None:
    c, clock, backend = world("recovered")
    assert [s.type for s in signals(backend)] == ["run_started"]
    assert call(backend, "run_status").data["status"] == "running"
    clock.sleep(12)
    got = signals(backend)
    assert [s.t for s in got] == [0, 12, 12]
    assert got[1].ts == c.started_at.replace(second=12) and got[1].pipeline == "ingestion"
    assert [s.kind for s in signals(backend, since=1, kinds=["metric"])] == ["metric"]
    assert [s.t for s in signals(backend, limit=1)] == [12]
    status = call(backend, "run_status").data
    assert status["status"] == "failed" and status["error"].startswith("MemoryError")
    assert set(status) >= {"run_id", "pipeline", "dataset", "status", "read", "accepted", "quarantined", "error"}
    clock.sleep(10)
    logs = call(backend, "get_logs", level="error").data
    assert [line["level"] for line in logs] == ["error", "error"]
    assert "OOM killer" in logs[-1]["message"]
    metrics = call(backend, "get_metrics", name="records_quarantined_total", labels={"reason": "decode_error"})
    assert metrics.data == [{"name": "records_quarantined_total", "labels": {"reason": "decode_error"}, "value": 0}]
    assert backend.no_data == 0


def test_what_the_case_cannot_answer_is_no_data_and_counted() -> None:
    _, clock, backend = world("recovered")
    clock.sleep(100)
    assert call(backend, "get_metrics", name="consumer_lag").status == "no_data"
    assert call(backend, "get_checks").status == "no_data"
    assert call(backend, "recall_incidents", query="oom").status == "no_data"
    assert call(backend, "no_such_tool").status == "no_data"
    assert call(backend, "record").status == "no_data"  # never one of the backend's own helpers
    assert backend.no_data == 5
    assert backend.no_data_calls == {"get_metrics": 1, "get_checks": 1, "recall_incidents": 1, "no_such_tool": 1,
                                     "record": 1}
    # An empty window is an answer: nothing new happened.
    assert call(backend, "get_signals", since_t=500).status == "no_data"
    assert backend.no_data == 5
    # A world with no runs and nothing failing has no run status.
    _, _, empty = world("control", signals=[{"t": 0, "kind": "log", "level": "info", "message": "hello"}])
    assert call(empty, "run_status").status == "no_data" and empty.no_data == 1


def test_config_is_the_case_config_over_the_model_defaults_and_actions_change_it() -> None:
    _, clock, backend = world("recovered")
    cfg = call(backend, "get_config").data
    assert cfg["version"] == 2
    assert cfg["values"]["batch_size"] == 2048 and cfg["values"]["workers"] == 2
    assert "quality_reject_below" in cfg["values"]  # the ingestion model's own tunables
    assert cfg["bounds"]["batch_size"] == [1.0, 4096.0]
    clock.sleep(20)
    res = call(backend, "set_config", key="batch_size", value=512)
    assert res.data == {"version": 3, "previous_version": 2, "batch_size": 512}
    call(backend, "scale_workers", workers=4)
    assert call(backend, "get_config").data["values"].items() >= {"batch_size": 512, "workers": 4}.items()
    restored = call(backend, "restore_config").data
    assert restored["restored_from"] == 1 and restored["previous_version"] == 4
    values = call(backend, "get_config").data["values"]
    assert values["batch_size"] == 64 and values["workers"] == 2  # the defaults, the last good version
    history = call(backend, "config_history").data
    assert [h["version"] for h in history] == [1, 2, 3, 4, 5]
    assert [h["actor"] for h in history] == ["system", "operator", "agent", "agent", "agent"]
    assert history[2]["changed"] == {"batch_size": [2048, 512]}
    # Each change shows up as the live backend's config_changed event, made by the agent.
    changes = [s for s in signals(backend) if s.type == "config_changed"]
    assert len(changes) == 3 and all((s.model_extra or {}).get("actor") == "agent" for s in changes)


def test_idempotency_keys_name_the_playbook() -> None:
    assert playbook_of_key("inc-1:1:reduce_batch_size:0:0") == ("reduce_batch_size", False)
    assert playbook_of_key("inc-1:1:reduce_batch_size:0:0:undo") == ("reduce_batch_size", True)
    assert playbook_of_key("inc-1:escalate") == (None, False)
    assert playbook_of_key(None) == (None, False)


def test_recovered_stops_the_failures_and_shows_healthy_signals() -> None:
    _, clock, backend = world("recovered")
    clock.sleep(14)
    call(backend, "notify", "inc-1:1:reduce_batch_size:9:0", message="before")  # not mutating: decides nothing
    assert backend.outcome_now() is None
    call(backend, "set_config", "inc-1:1:reduce_batch_size:0:0", key="batch_size", value=512)
    call(backend, "retry_stage", "inc-1:1:reduce_batch_size:1:0")
    assert backend.segments == [(14.0, "recovered", "reduce_batch_size")]
    assert [a["tool"] for a in backend.actions] == ["notify", "set_config", "retry_stage"]
    assert backend.actions[1].items() >= {"t": 14.0, "playbook": "reduce_batch_size", "outcome": "recovered"}.items()
    assert call(backend, "run_status").data["status"] == "failed"  # not yet: the rerun takes a moment
    clock.sleep(5)
    after = signals(backend, since=14)
    assert not [s for s in after if s.failing]
    assert any(s.type == "run_succeeded" for s in after)
    assert [m.value for m in after if m.kind == "metric"] == [0]
    assert call(backend, "run_status").data["status"] == "succeeded"
    assert call(backend, "probe_source").status == "ok"
    clock.sleep(300)
    assert not [s for s in signals(backend, since=14) if s.failing]


def test_still_failing_repeats_the_failures_from_the_action_on() -> None:
    _, clock, backend = world("still_failing")
    clock.sleep(4)
    assert call(backend, "probe_source").status == "error"  # the world is failing
    call(backend, "pause_pipeline", "inc-1:1:wait_for_upstream:0:0")
    assert backend.paused and backend.segments == [(4.0, "still_failing", "wait_for_upstream")]
    assert call(backend, "probe_source", "inc-1:1:wait_for_upstream:1:0").status == "error"
    failing = [s for s in signals(backend, since=4) if s.failing]
    assert [(s.t, s.type) for s in failing] == [(4.0, "stage_failed"), (4.0, "run_failed")]
    clock.sleep(100)
    repeats = sorted({s.t for s in signals(backend, since=4) if s.failing})
    assert repeats == [4.0, 34.0, 64.0, 94.0]
    assert call(backend, "run_status").data["status"] == "failed"
    # An undo belongs to the playbook but decides nothing.
    call(backend, "resume_pipeline", "inc-1:1:wait_for_upstream:0:0:undo")
    assert len(backend.segments) == 1 and not backend.paused


def test_worse_repeats_the_failures_with_more_of_them() -> None:
    _, clock, backend = world("worse")
    clock.sleep(11)
    call(backend, "retry_stage", "inc-1:1:retry_with_backoff:0:0")
    clock.sleep(1)
    after = signals(backend, since=11)
    assert {s.type for s in after if s.kind == "event"} == {"stage_failed", "run_failed"}
    assert any(s.kind == "log" and "more failures" in (s.message or "") for s in after)
    assert [s.value for s in after if s.name == "quarantine_ratio"] == [pytest.approx(0.175)]
    assert call(backend, "probe_source").status == "error"


def test_a_later_playbook_decides_again_and_unlisted_ones_take_the_default() -> None:
    _, clock, backend = world("worse", outcomes={"restore_config": "recovered"})
    clock.sleep(11)
    call(backend, "retry_stage", "inc-1:1:retry_with_backoff:0:0")
    call(backend, "retry_stage", "inc-1:1:retry_with_backoff:0:1")  # the same attempt: already decided
    clock.sleep(30)
    call(backend, "restore_config", "inc-1:2:restore_config:0:0")
    assert backend.segments == [(11.0, "still_failing", "retry_with_backoff"), (41.0, "recovered", "restore_config")]
    clock.sleep(300)
    assert [s.t for s in signals(backend, since=41) if s.failing] == []
    assert [s.t for s in signals(backend, since=11) if s.failing] == [11.0]  # the one repeat before the fix
    assert call(backend, "run_status").data["status"] == "succeeded"
