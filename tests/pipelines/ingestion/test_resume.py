"""A run killed with SIGKILL resumes: no sample twice, none lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sqlmodel import Session, func, select

from app.settings import Settings
from pipelines.ingestion import ingest, make_sample_dataset
from pipelines.runtime import RecordRow, RunRow, Runtime, SampleRow

# Ingests with batch size 8 and kills its own process (SIGKILL, no cleanup)
# right after the third batch has been committed.
_KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from app.settings import load_settings
    from pipelines.ingestion import FolderSource, IngestionConfig, ingest
    from pipelines.runtime import Runtime

    home, folder = sys.argv[1], sys.argv[2]
    rt = Runtime.open(load_settings(home=home))
    rt.configs.set("ingestion", "ds", IngestionConfig, {"batch_size": 8}, actor="test", reason="small batches")

    class Dying(FolderSource):
        reads = 0
        def read(self, n):
            Dying.reads += 1
            if Dying.reads == 4:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().read(n)

    ingest(rt, Dying(folder), "ds")
    """
)


def test_killed_run_resumes_without_loss_or_repeat(settings: Settings, tmp_path: Path) -> None:
    info = make_sample_dataset(tmp_path / "incoming", n_images=30, n_audio=4, n_text=6)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(settings.home), str(info.folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    rt = Runtime.open(settings)
    try:
        with Session(rt.engine) as s:
            (killed,) = s.exec(select(RunRow)).all()
            assert killed.status == "running" and killed.read == 24
        s2 = ingest(rt, str(info.folder), "ds")
        assert s2.run_id == killed.id, "the interrupted run resumes under its own id"
        assert s2.status == "succeeded"
        assert s2.read == info.n_files and s2.skipped == 0
        assert s2.read == s2.accepted + s2.duplicates + s2.quarantined
        with Session(rt.engine) as s:
            per_source = s.exec(select(RecordRow.source, func.count()).group_by(RecordRow.source)).all()
            assert len(per_source) == info.n_files
            assert all(n == 1 for _, n in per_source)
            assert len(s.exec(select(SampleRow)).all()) == info.n_accepted
        table = rt.offline.scan("ds")
        ids = table.column("sample_id").to_pylist()
        assert len(ids) == len(set(ids)) == info.n_accepted
        assert len(rt.offline.snapshots("ds")) == 1
    finally:
        rt.close()
