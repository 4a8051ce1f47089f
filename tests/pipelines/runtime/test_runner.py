"""The runtime on a small pipeline of its own: retries, failure, pause, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from app.errors import BoundsError, RecordRejected
from pipelines.ingestion import FolderSource
from pipelines.runtime import Item, PipelineConfig, Runner, Runtime, Stage, StageContext, bounds_of


class Upper:
    """Accepts text records, rejects those containing 'bad', fails the first
    ``flaky`` attempts of its stage."""

    name = "upper"
    config_model = PipelineConfig

    def __init__(self, flaky: int = 0) -> None:
        self.flaky = flaky
        self.attempts = 0

    def stages(self) -> list[Stage]:
        return [Stage("check", self._check), Stage("flaky", self._flaky, per_record=False)]

    def _check(self, item: Item, ctx: StageContext) -> None:
        if b"bad" in item.record.data:
            raise RecordRejected("bad_word", "contains 'bad'")

    def _flaky(self, items: list[Item], ctx: StageContext) -> None:
        self.attempts += 1
        if self.attempts <= self.flaky:
            raise ConnectionResetError("peer reset the connection")
        for i in items:
            i.accept(i.sha256[:8])

    def open(self, ctx: StageContext) -> None: ...
    def commit_rows(self, items: list[Item], ctx: StageContext, session: Session) -> None: ...
    def after_commit(self, items: list[Item], ctx: StageContext) -> None: ...
    def finalize(self, ctx: StageContext) -> int | None:
        return None


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for i in range(10):
        (d / f"{i}.txt").write_text("bad text" if i % 5 == 0 else f"text {i}")
    return d


def _fast(rt: Runtime, **changes: object) -> None:
    rt.configs.set("upper", "t", PipelineConfig, {"retry_backoff_s": 0.0, **changes}, actor="test", reason="")


def test_transient_stage_failure_is_retried(runtime: Runtime, folder: Path) -> None:
    _fast(runtime)
    s = Runner(runtime, Upper(flaky=2)).run("t", FolderSource(str(folder)))
    assert s.status == "succeeded"
    assert (s.read, s.accepted, s.quarantined) == (10, 8, 2)
    assert s.quarantine_reasons == {"bad_word": 2}
    retries = runtime.events.list(run_id=s.run_id, types=["stage_retry"])
    assert [e.data["attempt"] for e in retries] == [1, 2]
    assert "ConnectionResetError" in (retries[0].data["error"] or "")


def test_stage_failing_past_retries_fails_the_run(runtime: Runtime, folder: Path) -> None:
    _fast(runtime, max_stage_retries=1)
    s = Runner(runtime, Upper(flaky=99)).run("t", FolderSource(str(folder)))
    assert s.status == "failed" and "flaky" in (s.error or "")
    (failed,) = runtime.events.list(run_id=s.run_id, types=["stage_failed"])
    assert failed.stage == "flaky" and failed.level == "error"
    # Nothing was committed, so nothing is lost: a rerun picks everything up.
    rerun = Runner(runtime, Upper()).run("t", FolderSource(str(folder)))
    assert rerun.status == "succeeded" and rerun.read == 10


def test_paused_pipeline_stops_between_batches_and_resumes(runtime: Runtime, folder: Path) -> None:
    _fast(runtime, batch_size=4)
    runtime.control.pause("upper", by="test", reason="maintenance")
    s = Runner(runtime, Upper()).run("t", FolderSource(str(folder)))
    assert s.status == "paused" and s.read == 0
    runtime.control.resume("upper", by="test")
    s2 = Runner(runtime, Upper()).run("t", FolderSource(str(folder)))
    assert s2.run_id == s.run_id and s2.status == "succeeded" and s2.read == 10


def test_config_bounds_are_declared_and_enforced(runtime: Runtime) -> None:
    assert bounds_of(PipelineConfig)["batch_size"] == (1.0, 4096.0)
    with pytest.raises(BoundsError, match="batch_size"):
        runtime.configs.set("upper", "t", PipelineConfig, {"batch_size": 100_000}, actor="agent", reason="")
    with pytest.raises(BoundsError, match="no setting"):
        runtime.configs.set("upper", "t", PipelineConfig, {"nope": 1}, actor="agent", reason="")
    v, cfg = runtime.configs.set("upper", "t", PipelineConfig, {"batch_size": 16}, actor="agent", reason="oom")
    assert cfg.batch_size == 16
    v2, restored = runtime.configs.restore("upper", "t", PipelineConfig, 1, actor="agent", reason="back")
    assert restored.batch_size == 64 and v2 == v + 1
