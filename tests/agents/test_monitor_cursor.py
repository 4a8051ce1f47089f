"""The live monitor reads pipeline events by id: events committed out of
time order, or within the millisecond of the last one read, are each seen
exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langgraph.runtime import Runtime as GraphRuntime
from sqlmodel import Session

from agents import Supervisor, supervisor
from agents._nodes import monitor
from pipelines.ingestion import ingestion_job
from pipelines.runtime import RunEventRow, Runtime
from tools._catalog import GetSignalsArgs

ERROR = {"level": "error", "message": "source refused the connection", "error": "ConnectionError: refused"}


@pytest.fixture
def sup(runtime: Runtime, tmp_path: Path) -> Iterator[Supervisor]:
    with supervisor(runtime, [ingestion_job("ds", str(tmp_path / "landing"))], llm=None) as s:
        yield s


def _commit(rt: Runtime, *, ts: datetime, id: int | None = None, pipeline: str = "ingestion") -> int:
    """A row committed now but stamped (and, with ``id``, numbered) earlier:
    what a concurrent writer whose commit was slow leaves behind."""
    row = RunEventRow(
        id=id, pipeline=pipeline, dataset="ds", type="source_unreachable", ts=ts, level=ERROR["level"],
        message=ERROR["message"], data={"error": ERROR["error"]},
    )
    with Session(rt.engine, expire_on_commit=False) as s:
        s.add(row)
        s.commit()
    assert row.id is not None
    return row.id


def _emit(rt: Runtime, pipeline: str = "ingestion") -> RunEventRow:
    return rt.events.emit(pipeline, "source_unreachable", dataset="ds", **ERROR)


class Monitor:
    """Monitor passes over one job, carrying the cursor the way the supervisor does."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.cursor: dict[str, Any] = dict(next(iter(sup.cursors.values())))
        self.passes = 0

    def read(self) -> dict[str, Any]:
        self.passes += 1
        state = {"pipeline": "ingestion", "dataset": "ds", **self.cursor, "incident_id": f"inc-{self.passes}"}
        out = monitor(state, GraphRuntime(context=self.sup.context))  # type: ignore[arg-type]
        self.cursor = {k: out.get(k, v) for k, v in self.cursor.items()}
        return out


def test_out_of_order_and_same_millisecond_events_are_each_seen_once(sup: Supervisor) -> None:
    rt, mon = sup.rt, Monitor(sup)
    first = _emit(rt)
    out = mon.read()
    assert out["quiet"] is False, "the first failure opens an incident"
    incident = out["incident_id"]
    after_first = mon.cursor["cursor_t"]

    # Committed after the first read: one stamped two seconds before it, one in its millisecond.
    earlier = _commit(rt, ts=first.ts - timedelta(seconds=2))
    same_ms = _commit(rt, ts=first.ts)
    by_time = sup.tools.observe("get_signals", {"pipeline": "ingestion", "dataset": "ds", "since_t": after_first})
    missed = {s.get("event_id") for s in by_time.data or []}
    assert earlier not in missed and same_ms not in missed, "reading by time alone loses them"
    assert mon.read().get("joined") == incident

    # An id taken before a newer event's, committed after that one was read (Postgres-style).
    held = _emit(rt, pipeline="elsewhere")
    newer = _emit(rt)
    assert mon.read().get("joined") == incident
    with Session(rt.engine) as s:
        row = s.get(RunEventRow, held.id)
        s.delete(row)
        s.commit()
    late = _commit(rt, ts=held.ts, id=held.id)
    assert late < newer.id
    assert mon.read().get("joined") == incident
    assert mon.read() == {"quiet": True, **mon.cursor}, "nothing new: nothing read again"

    signals = sup.store.get(incident).signals
    for kind in ("event", "log"):
        seen = Counter(s["event_id"] for s in signals if s["kind"] == kind)
        assert seen == Counter({first.id: 1, earlier: 1, same_ms: 1, newer.id: 1, late: 1}), kind
    assert mon.cursor["cursor_event_id"] == newer.id
    assert set(mon.cursor["recent_event_ids"]) == {str(i) for i in (first.id, earlier, same_ms, newer.id, late)}


def test_events_before_the_supervisor_started_are_not_read(runtime: Runtime, tmp_path: Path) -> None:
    _emit(runtime)
    with supervisor(runtime, [ingestion_job("ds", str(tmp_path / "landing"))], llm=None) as sup:
        mon = Monitor(sup)
        assert mon.read()["quiet"] is True
        fresh = _emit(runtime)
        out = mon.read()
        assert [s["event_id"] for s in out["signals"] if s["kind"] == "event"] == [fresh.id]


def test_the_event_cursor_stays_out_of_other_backends_calls() -> None:
    """Backends without event ids (replay) never receive the cursor arguments,
    and an LLM is not offered them."""
    assert set(GetSignalsArgs(pipeline="ingestion").model_dump()) == {"pipeline", "dataset", "since_t", "kinds", "limit"}
    assert GetSignalsArgs(pipeline="ingestion", after_event_id=3).model_dump()["after_event_id"] == 3
    assert "after_event_id" not in GetSignalsArgs.model_json_schema()["properties"]
