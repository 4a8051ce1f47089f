"""Conformance of the hash-chained audit log on every reachable backend."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from guardrails import GENESIS_HASH, AuditEntry, AuditLog, AuditVerdict
from guardrails._audit import entry_hash
from tests.guardrails.conftest import FakeClock


def fill(log: AuditLog, n: int = 5) -> None:
    for i in range(1, n + 1):
        log.append(
            actor="agent",
            action="set_config",
            verdict=AuditVerdict.EXECUTED,
            pipeline="ingestion",
            incident_id=f"inc-{i % 2}",
            args={"key": "workers", "value": i, "nested": {"b": [1, 2.5], "a": None}},
            risk="medium",
            reason=f"step {i}",
            idempotency_key=f"k{i}",
            result={"version": i},
        )


def test_chain_links_and_verifies(engine: Engine, clock: FakeClock) -> None:
    log = AuditLog(engine, clock=clock)
    assert log.verify().ok and log.verify().checked == 0 and log.head() is None
    fill(log)
    entries = log.entries(limit=100)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert all(entry_hash(e) == e.hash for e in entries)
    assert log.head() == (5, entries[-1].hash)
    result = log.verify(batch=2)
    assert result.ok and result.checked == 5 and result.first_bad_seq is None


def test_entries_filter_and_limit(engine: Engine, clock: FakeClock) -> None:
    log = AuditLog(engine, clock=clock)
    fill(log, 6)
    assert [e.seq for e in log.entries("inc-1")] == [1, 3, 5]
    assert [e.seq for e in log.entries(limit=2)] == [5, 6]
    assert log.entries(pipeline="annotation") == []
    assert log.count(verdicts=["executed"], incident_id="inc-0") == 3


def test_unjsonable_args_are_normalised(engine: Engine, clock: FakeClock) -> None:
    log = AuditLog(engine, clock=clock)
    entry = log.append(
        actor="cli", action="notify", verdict="allowed", args={"when": clock(), "ids": (1, 2), "x": float("inf")}
    )
    stored = log.entries()[0]
    assert stored.args == entry.args == {"when": "2025-01-15T12:00:00+00:00", "ids": [1, 2], "x": "inf"}
    assert log.verify().ok


def test_edited_row_is_found(engine: Engine, clock: FakeClock) -> None:
    log = AuditLog(engine, clock=clock)
    fill(log)
    with engine.begin() as conn:
        conn.execute(update(AuditEntry).where(col(AuditEntry.seq) == 3).values(args={"key": "workers", "value": 99}))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3 and result.checked == 2
    assert "altered" in result.reason


def test_edited_and_rehashed_row_breaks_the_next_link(engine: Engine, clock: FakeClock) -> None:
    log = AuditLog(engine, clock=clock)
    fill(log)
    row = log.entries()[1]
    row.reason = "nothing to see"
    row.hash = entry_hash(row)
    with engine.begin() as conn:
        conn.execute(update(AuditEntry).where(col(AuditEntry.seq) == 2).values(reason=row.reason, hash=row.hash))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3 and "does not chain" in result.reason


def test_deleted_row_is_found(engine: Engine, clock: FakeClock) -> None:
    log = AuditLog(engine, clock=clock)
    fill(log)
    with engine.begin() as conn:
        conn.execute(delete(AuditEntry).where(col(AuditEntry.seq) == 4))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 4 and "missing" in result.reason


def test_deleted_first_row_is_found(engine: Engine, clock: FakeClock) -> None:
    log = AuditLog(engine, clock=clock)
    fill(log, 3)
    with engine.begin() as conn:
        conn.execute(delete(AuditEntry).where(col(AuditEntry.seq) == 1))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 1


def test_reordered_rows_are_found(engine: Engine, clock: FakeClock) -> None:
    log = AuditLog(engine, clock=clock)
    fill(log)
    with engine.begin() as conn:  # swap entries 2 and 3
        conn.execute(update(AuditEntry).where(col(AuditEntry.seq) == 2).values(seq=100))
        conn.execute(update(AuditEntry).where(col(AuditEntry.seq) == 3).values(seq=2))
        conn.execute(update(AuditEntry).where(col(AuditEntry.seq) == 100).values(seq=3))
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_concurrent_appends_keep_one_chain(engine: Engine) -> None:
    logs = [AuditLog(engine) for _ in range(4)]

    def write(i: int) -> None:
        for j in range(10):
            logs[i].append(actor=f"w{i}", action="notify", verdict="executed", args={"j": j})

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(4)))
    result = logs[0].verify()
    assert result.ok and result.checked == 40
    assert [e.seq for e in logs[0].entries(limit=100)] == list(range(1, 41))
