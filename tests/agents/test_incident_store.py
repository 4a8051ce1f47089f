"""An incident's evidence stays bounded however many symptoms join it."""

from __future__ import annotations

from agents import IncidentRow, IncidentStore
from agents._store import MAX_EVIDENCE
from pipelines.runtime import Runtime


def test_joining_symptoms_keep_the_opening_evidence_and_the_latest(runtime: Runtime) -> None:
    store = IncidentStore(runtime.engine)
    opening = [{"kind": "log", "message": f"open {i}"} for i in range(3)]
    store.create(IncidentRow(id="inc-1", pipeline="ingestion", signals=opening))
    for batch in range(MAX_EVIDENCE):
        store.append_signals("inc-1", [{"kind": "event", "type": "alert", "n": batch}])
    kept = store.get("inc-1").signals
    assert len(kept) == MAX_EVIDENCE
    assert kept[:3] == opening
    assert kept[-1] == {"kind": "event", "type": "alert", "n": MAX_EVIDENCE - 1}


def test_small_incidents_keep_everything(runtime: Runtime) -> None:
    store = IncidentStore(runtime.engine)
    store.create(IncidentRow(id="inc-2", pipeline="ingestion", signals=[{"kind": "log", "message": "a"}]))
    store.append_signals("inc-2", [{"kind": "log", "message": "b"}])
    assert [s["message"] for s in store.get("inc-2").signals] == ["a", "b"]
