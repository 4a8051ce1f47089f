"""Conformance of :meth:`Guardrails.check` on every reachable backend."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from app.errors import ConfigError
from guardrails import ACTIONS, ActionRequest, AuditVerdict, GuardrailPolicy, Guardrails, Risk
from tests.guardrails.conftest import MODEL_BOUNDS, FakeClock, with_policy


def req(
    action: str = "retry_stage", pipeline: str = "ingestion", incident: str | None = "inc-1", **kw: Any
) -> ActionRequest:
    return ActionRequest(action=action, pipeline=pipeline, incident_id=incident, **kw)


def last_entry(guards: Guardrails) -> Any:
    return guards.audit.entries(limit=1)[-1]


def test_allowed_action_is_audited(guards: Guardrails) -> None:
    verdict = guards.check(req(args={"stage": "decode"}, idempotency_key="k1"))
    assert verdict.allowed and verdict.rule is None and verdict.risk is Risk.LOW and not verdict.dry_run
    entry = last_entry(guards)
    assert entry.seq == verdict.audit_seq
    assert (entry.verdict, entry.action, entry.pipeline, entry.incident_id) == (
        "allowed",
        "retry_stage",
        "ingestion",
        "inc-1",
    )
    assert entry.args == {"stage": "decode"} and entry.idempotency_key == "k1" and entry.risk == "low"


def test_risk_of_comes_from_the_policy(guards: Guardrails) -> None:
    assert guards.risk_of("set_config") is Risk.MEDIUM
    with pytest.raises(ConfigError, match="no_such_action"):
        guards.risk_of("no_such_action")


def test_unknown_action_is_refused(guards: Guardrails) -> None:
    verdict = guards.check(req(action="drop_database"))
    assert not verdict.allowed and verdict.rule == "unknown_action" and verdict.risk is None
    assert last_entry(guards).verdict == "refused"


def test_request_targets_one_pipeline() -> None:
    with pytest.raises(ValidationError):
        req(pipeline="*")


@pytest.mark.parametrize("scope", ["*", "ingestion"])
def test_kill_switch_refuses_every_action_and_audits_it(guards: Guardrails, scope: str) -> None:
    guards.pause(scope, by="slack:alice", reason="investigating a bad deploy")
    assert guards.is_paused("ingestion")
    assert guards.is_paused("annotation") is (scope == "*")
    before = len(guards.audit.entries(limit=1000))
    for action in ACTIONS:
        verdict = guards.check(req(action=action, actor="cli"))
        assert not verdict.allowed and verdict.rule == "kill_switch", action
        assert "slack:alice" in verdict.reason and "investigating" in verdict.reason
    entries = guards.audit.entries(limit=1000)[before:]
    assert [e.action for e in entries] == list(ACTIONS)
    assert all(e.verdict == "refused" and e.reason.startswith("kill_switch:") for e in entries)
    # Other pipelines are untouched by a pipeline's own switch.
    assert guards.check(req(pipeline="annotation")).allowed is (scope != "*")
    guards.resume(scope, by="slack:alice")
    assert not guards.is_paused("ingestion")
    assert guards.check(req()).allowed


def test_global_pause_outranks_a_pipeline_resume(guards: Guardrails) -> None:
    guards.pause(by="cli", reason="freeze")
    guards.resume("ingestion", by="cli")
    assert guards.is_paused("ingestion")
    assert [(s.scope, s.paused) for s in guards.kill_switches()] == [("*", True), ("ingestion", False)]
    assert [e.action for e in guards.audit.entries()] == ["guardrails.pause", "guardrails.resume"]


def test_kill_switch_comes_before_dry_run(engine: Engine, policy: GuardrailPolicy, clock: FakeClock) -> None:
    guards = Guardrails(engine, with_policy(policy, dry_run=True), MODEL_BOUNDS, clock=clock)
    guards.pause("ingestion", by="cli", reason="")
    verdict = guards.check(req())
    assert verdict.rule == "kill_switch" and not verdict.dry_run


def test_bounds_refused_with_reason(guards: Guardrails) -> None:
    ok = guards.check(req(action="set_config", config_key="workers", new_value=4, old_value=2))
    assert ok.allowed
    too_big = guards.check(req(action="set_config", config_key="workers", new_value=64, old_value=32))
    assert not too_big.allowed and too_big.rule == "bounds"
    assert "ingestion.workers=64 is above the maximum 16" in too_big.reason
    jump = guards.check(req(action="scale_workers", config_key="workers", new_value=12, old_value=2))
    assert jump.rule == "bounds" and "step factor" in jump.reason
    unknown = guards.check(req(action="set_config", config_key="colour", new_value=1))
    assert unknown.rule == "bounds" and "not a tunable" in unknown.reason
    entry = last_entry(guards)
    assert entry.verdict == "refused" and entry.reason.startswith("bounds:")
    assert entry.args["config_change"] == {"key": "colour", "new": 1, "old": None}


def test_attempts_per_incident(guards: Guardrails) -> None:
    request = req(incident="inc-7")
    for outcome in ("executed", "failed", "executed"):
        assert guards.check(request).allowed
        guards.record(request, outcome)
    # Non-mutating actions use no attempt and are still allowed.
    assert guards.check(req(action="notify", incident="inc-7")).allowed
    verdict = guards.check(request)
    assert not verdict.allowed and verdict.rule == "attempts" and "3 of its 3" in verdict.reason
    assert last_entry(guards).verdict == "refused"
    # Refusals and "allowed" verdicts are not attempts; other incidents have their own budget.
    assert guards.check(req(incident="inc-8")).allowed


def test_rate_limit_per_pipeline_and_global(engine: Engine, policy: GuardrailPolicy, clock: FakeClock) -> None:
    limits = {"per_pipeline": {"max_actions": 2, "window_s": 60}, "global": {"max_actions": 3, "window_s": 60}}
    guards = Guardrails(engine, with_policy(policy, rate_limits=limits), MODEL_BOUNDS, clock=clock)
    for i in range(2):
        guards.record(req(incident=f"a{i}"), AuditVerdict.EXECUTED)
    verdict = guards.check(req(incident="a9"))
    assert verdict.rule == "rate_limit" and "pipeline 'ingestion'" in verdict.reason
    assert guards.check(req(pipeline="annotation", incident="b0")).allowed
    guards.record(req(pipeline="annotation", incident="b0"), AuditVerdict.FAILED)
    verdict = guards.check(req(pipeline="enrichment", incident="c0"))
    assert verdict.rule == "rate_limit" and "all pipelines" in verdict.reason
    # Refusals do not count, so the window drains once time moves on.
    clock.advance(61)
    assert guards.check(req(incident="a9")).allowed
    assert guards.check(req(pipeline="enrichment", incident="c0")).allowed


def test_rate_limit_override_for_one_pipeline(engine: Engine, policy: GuardrailPolicy, clock: FakeClock) -> None:
    limits = {"pipelines": {"annotation": {"max_actions": 1, "window_s": 60}}}
    guards = Guardrails(engine, with_policy(policy, rate_limits=limits), MODEL_BOUNDS, clock=clock)
    guards.record(req(pipeline="annotation"), AuditVerdict.EXECUTED)
    guards.record(req(pipeline="ingestion", incident="x"), AuditVerdict.EXECUTED)
    assert guards.check(req(pipeline="annotation", incident="y")).rule == "rate_limit"
    assert guards.check(req(pipeline="ingestion", incident="y")).allowed


def test_in_flight_lock(guards: Guardrails) -> None:
    assert guards.acquire("ingestion", "inc-1")
    assert guards.acquire("ingestion", "inc-1")  # re-entrant
    assert not guards.acquire("ingestion", "inc-2")
    assert guards.holder("ingestion") is not None
    assert guards.check(req(incident="inc-1")).allowed
    verdict = guards.check(req(incident="inc-2"))
    assert verdict.rule == "in_flight" and "'inc-1'" in verdict.reason
    assert guards.check(req(incident=None, actor="cli")).rule == "in_flight"
    # Escalation still goes out, and other pipelines are free.
    assert guards.check(req(action="notify", incident="inc-2")).allowed
    assert guards.check(req(pipeline="annotation", incident="inc-2")).allowed
    assert not guards.release("ingestion", "inc-2")
    assert guards.release("ingestion", "inc-1")
    assert guards.holder("ingestion") is None
    assert guards.acquire("ingestion", "inc-2")
    assert guards.check(req(incident="inc-2")).allowed


def test_force_release_is_audited(guards: Guardrails) -> None:
    guards.acquire("ingestion", "inc-1")
    assert guards.force_release("ingestion", by="slack:bob", reason="stale lock")
    assert not guards.force_release("ingestion", by="slack:bob", reason="again")
    entry = last_entry(guards)
    assert (entry.action, entry.actor, entry.incident_id) == ("guardrails.force_release", "slack:bob", "inc-1")


def test_dry_run_policy(engine: Engine, policy: GuardrailPolicy, clock: FakeClock) -> None:
    guards = Guardrails(engine, with_policy(policy, dry_run=True), MODEL_BOUNDS, clock=clock)
    verdict = guards.check(req())
    assert not verdict.allowed and verdict.dry_run and verdict.reason == "dry run: would be allowed"
    bad = guards.check(req(action="set_config", config_key="workers", new_value=99, old_value=2))
    assert not bad.allowed and bad.dry_run and bad.rule == "bounds"
    assert bad.reason.startswith("dry run: would be refused:")
    assert [e.verdict for e in guards.audit.entries()] == ["dry_run", "dry_run"]


def test_dry_run_request(guards: Guardrails) -> None:
    verdict = guards.check(req(dry_run=True))
    assert verdict.dry_run and not verdict.allowed
    assert guards.check(req()).allowed


def test_order_bounds_before_attempts(guards: Guardrails) -> None:
    request = req(action="set_config", config_key="workers", new_value=99, old_value=2)
    for _ in range(3):
        guards.record(request, AuditVerdict.FAILED)
    assert guards.check(request).rule == "bounds"
    assert guards.check(req()).rule == "attempts"
