"""The ingestion pipeline end to end on the embedded backends."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlmodel import Session, select

from pipelines.ingestion import export_manifest, ingest, make_images, make_sample_dataset
from pipelines.runtime import RecordRow, Runtime, SampleRow


@pytest.fixture
def sample(tmp_path: Path):
    return make_sample_dataset(tmp_path / "incoming", n_images=24, n_audio=4, n_text=6)


def _records(rt: Runtime, run_id: str) -> dict[str, RecordRow]:
    with Session(rt.engine) as s:
        rows = s.exec(select(RecordRow).where(RecordRow.run_id == run_id)).all()
    return {Path(r.source).name: r for r in rows}


def test_every_file_ends_accepted_duplicate_or_quarantined(runtime: Runtime, sample) -> None:
    s = ingest(runtime, str(sample.folder), "ds")
    assert s.status == "succeeded"
    assert s.read == sample.n_files
    assert s.read == s.accepted + s.duplicates + s.quarantined
    assert s.accepted == sample.n_accepted
    assert s.duplicates == sample.n_duplicates
    recs = _records(runtime, s.run_id)
    assert set(recs) == set(sample.files)
    for name in sample.originals:
        assert recs[name].outcome == "accepted"
    for name, reason in sample.rejected.items():
        assert recs[name].outcome == "quarantined"
        assert recs[name].reason == reason
    assert sum(s.quarantine_reasons.values()) == s.quarantined
    # A duplicate points at the sample id of its original.
    for name, original in {**sample.exact_duplicates, **sample.near_duplicates}.items():
        assert recs[name].outcome == "duplicate"
        assert recs[name].duplicate_of == recs[original].sample_id


def test_quarantine_keeps_the_original_bytes(runtime: Runtime, sample) -> None:
    from pipelines.runtime import QuarantineRow

    ingest(runtime, str(sample.folder), "ds")
    with Session(runtime.engine) as s:
        rows = s.exec(select(QuarantineRow)).all()
    assert rows
    for row in rows:
        original = Path(row.source).read_bytes()
        assert runtime.objects.get(row.uri) == original


def test_one_snapshot_per_run_and_manifest(runtime: Runtime, sample, tmp_path: Path) -> None:
    s = ingest(runtime, str(sample.folder), "ds")
    snaps = runtime.offline.snapshots("ds")
    assert [x.snapshot_id for x in snaps] == [s.snapshot_id]
    assert snaps[0].run_id == s.run_id
    out = tmp_path / "m.parquet"
    n = export_manifest(runtime, "ds", out)
    table = pq.read_table(out)
    assert n == table.num_rows == s.accepted
    assert {"sample_id", "source", "uri", "modality", "sha256", "phash", "quality_score", "metadata"} <= set(
        table.column_names
    )
    row = next(r for r in table.to_pylist() if r["modality"] == "image")
    assert row["phash"] and len(row["phash"]) == 16
    assert runtime.objects.get(row["uri"]) == Path(row["source"]).read_bytes()
    # The online store has the latest metadata of every accepted sample.
    assert runtime.online.count("ds/") == s.accepted


def test_rerun_skips_and_dedup_spans_runs(runtime: Runtime, sample, tmp_path: Path) -> None:
    first = ingest(runtime, str(sample.folder), "ds")
    again = ingest(runtime, str(sample.folder), "ds")
    assert (again.read, again.skipped) == (0, first.read)
    # The same content under new names, in a new folder: all duplicates of run 1.
    copy = tmp_path / "copy"
    copy.mkdir()
    originals = [n for n, m in sample.originals.items() if m == "image"][:5]
    for name in originals:
        shutil.copy(sample.folder / name, copy / f"again_{name}")
    third = ingest(runtime, str(copy), "ds")
    assert (third.read, third.duplicates, third.accepted) == (5, 5, 0)
    with Session(runtime.engine) as s:
        assert len(s.exec(select(SampleRow)).all()) == first.accepted


def test_near_duplicates_found_against_earlier_runs(runtime: Runtime, tmp_path: Path) -> None:
    from PIL import Image

    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    paths = make_images(first_dir, 6, seed=3)
    ingest(runtime, str(first_dir), "ds")
    second_dir.mkdir()
    for p in paths:
        with Image.open(p) as img:
            img.convert("RGB").resize((180, 180)).save(second_dir / f"{p.stem}_small.jpg", quality=70)
    s = ingest(runtime, str(second_dir), "ds")
    assert s.duplicates == 6 and s.accepted == 0


def test_live_config_change_applies_between_batches(runtime: Runtime, sample) -> None:
    from pipelines.ingestion import IngestionConfig

    runtime.configs.set("ingestion", "ds", IngestionConfig, {"batch_size": 8}, actor="test", reason="small")
    s = ingest(runtime, str(sample.folder), "ds")
    batches = runtime.events.list(run_id=s.run_id, types=["batch_committed"])
    assert len(batches) == -(-sample.n_files // 8)
    hist = runtime.configs.history("ingestion", "ds")
    assert hist[-1].changed == {"batch_size": [64, 8]} and hist[-1].actor == "test"
    assert hist[-1].good is True
