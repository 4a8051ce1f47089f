"""Conformance of the idempotency ledger and the in-flight lock across
engine instances (a restart) and threads, on every reachable backend."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from app.db import init_db, make_engine
from app.errors import GuardrailError
from guardrails import ActionLedger, GuardrailPolicy, Guardrails, LedgerStatus
from guardrails._models import GUARDRAIL_TABLES
from tests.guardrails.conftest import MODEL_BOUNDS


def test_run_once_does_not_repeat_a_done_action_after_a_restart(engine: Engine, policy: GuardrailPolicy) -> None:
    calls: list[str] = []

    def rollback() -> dict[str, int]:
        calls.append("rollback")
        return {"snapshot": 42}

    first = Guardrails(engine, policy, MODEL_BOUNDS)
    assert first.run_once("inc-1:rollback_table:1", rollback) == {"snapshot": 42}

    # A new process: a new engine on the same database, a new Guardrails.
    again = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        second = Guardrails(again, policy, MODEL_BOUNDS)
        assert second.run_once("inc-1:rollback_table:1", rollback) == {"snapshot": 42}
        assert second.run_once("inc-1:rollback_table:2", rollback) == {"snapshot": 42}
    finally:
        again.dispose()
    assert calls == ["rollback", "rollback"]
    with Session(engine) as s:
        row = s.get(ActionLedger, "inc-1:rollback_table:1")
        assert row is not None and row.status == LedgerStatus.DONE and row.finished_at is not None


def test_failed_action_runs_again(guards: Guardrails) -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("network blip")
        return "ok"

    with pytest.raises(RuntimeError):
        guards.run_once("k", flaky)
    with Session(guards.audit.engine) as s:
        row = s.get(ActionLedger, "k")
        assert row is not None and row.status == "failed" and "network blip" in row.result["error"]
    assert guards.run_once("k", flaky) == "ok"
    assert guards.run_once("k", flaky) == "ok"
    assert len(attempts) == 2


def test_unfinished_action_is_not_repeated_blindly(guards: Guardrails) -> None:
    engine = guards.audit.engine
    guards.run_once("k", lambda: 1)
    with engine.begin() as conn:  # as if the process died while the action ran
        conn.execute(update(ActionLedger).where(col(ActionLedger.idempotency_key) == "k").values(status="started"))
    with pytest.raises(GuardrailError, match="has not finished"):
        guards.run_once("k", lambda: 2)
    assert guards.run_once("k", lambda: 2, rerun_unfinished=True) == 2
    assert guards.run_once("k", lambda: 3) == 2


def test_concurrent_run_once_runs_fn_once(guards: Guardrails) -> None:
    calls: list[int] = []
    gate = threading.Event()

    def slow() -> int:
        calls.append(1)
        gate.wait(5)
        return 7

    def worker() -> str:
        try:
            return str(guards.run_once("shared", slow))
        except GuardrailError:
            return "busy"

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(worker) for _ in range(4)]
        while not calls:
            threading.Event().wait(0.01)
        threading.Event().wait(0.2)
        gate.set()
        outcomes = sorted(f.result() for f in futures)
    assert len(calls) == 1
    assert outcomes.count("7") >= 1 and set(outcomes) <= {"7", "busy"}


def test_concurrent_acquire_has_one_winner(guards: Guardrails) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        won = list(pool.map(lambda i: guards.acquire("ingestion", f"inc-{i}"), range(8)))
    assert won.count(True) == 1
    holder = guards.holder("ingestion")
    assert holder is not None and holder.incident_id == f"inc-{won.index(True)}"


def test_lock_and_switch_survive_a_restart(engine: Engine, policy: GuardrailPolicy) -> None:
    Guardrails(engine, policy, MODEL_BOUNDS).acquire("annotation", "inc-1")
    Guardrails(engine, policy, MODEL_BOUNDS).pause("enrichment", by="cli", reason="maintenance")
    other = Guardrails(engine, policy, MODEL_BOUNDS)
    assert not other.acquire("annotation", "inc-2")
    assert other.is_paused("enrichment") and not other.is_paused("annotation")


def test_init_db_creates_the_guardrail_tables(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        init_db(engine)
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {t.name for t in GUARDRAIL_TABLES} <= names
