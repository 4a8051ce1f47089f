"""The enrichment pipeline end to end on the embedded backends: an ingested
dataset with planted defects, duplicates and neighbours, enriched once per
module (the model loads dominate), then checked stage by stage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import zarr
from sqlmodel import Session, select

from app.settings import load_settings
from pipelines.enrichment import (
    EnrichmentConfig,
    EnrichmentResult,
    VectorStore,
    enrich,
    enrichment_table,
    read_enrichment,
    reenrich,
    search_like,
    search_text,
)
from pipelines.ingestion import IngestionConfig, export_manifest, ingest
from pipelines.runtime import QuarantineRow, RecordRow, RunRow, Runtime
from tests.pipelines.enrichment.planted import TEXTS, Planted, make_planted, make_second

pytestmark = pytest.mark.slow  # one ingest + enrich per module: model loads take seconds


@dataclass
class World:
    rt: Runtime
    planted: Planted
    sid: dict[str, str]  # file name -> sample id (both datasets)
    second: dict[str, str]
    n_first: int  # samples the first dataset's ingestion accepted
    result: EnrichmentResult
    second_result: EnrichmentResult

    def rows(self, dataset: str = "digits", version: str = "v1") -> dict[str, dict[str, object]]:
        table = read_enrichment(self.rt, dataset, version)
        return {r["sample_id"]: r for r in table.to_pylist()}


def _sample_ids(rt: Runtime, run_id: str) -> dict[str, str]:
    with Session(rt.engine) as s:
        rows = s.exec(select(RecordRow).where(RecordRow.run_id == run_id)).all()
    return {Path(r.source).name: r.sample_id for r in rows if r.sample_id}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("enrich")
    planted = make_planted(root / "digits")
    second = make_second(root / "more", planted)
    rt = Runtime.open(load_settings(home=root / "ws"))
    # Exact-only dedup at ingestion, so the planted near-duplicate reaches the raw table.
    rt.configs.set("ingestion", "digits", IngestionConfig, {"phash_max_distance": 0}, actor="test", reason="plant")
    first = ingest(rt, str(planted.folder), "digits")
    more = ingest(rt, str(root / "more"), "more")
    assert first.accepted == first.read and more.accepted == more.read
    sid = {**_sample_ids(rt, first.run_id), **_sample_ids(rt, more.run_id)}
    result = enrich(rt, "digits")
    second_result = enrich(rt, "more")
    yield World(rt, planted, sid, second, first.accepted, result, second_result)
    rt.close()


def test_every_record_is_accounted_for_and_each_stage_shrinks_the_next(world: World) -> None:
    r = world.result
    assert r.status == "succeeded" and r.version == "v1"
    raw_rows = world.rt.offline.scan("digits", r.raw_snapshot_id).num_rows
    assert r.processed == raw_rows == world.n_first
    with Session(world.rt.engine) as s:
        run = s.get(RunRow, r.run_id)
    assert run is not None and run.read == run.accepted + run.duplicates + run.quarantined == raw_rows
    stages = {s.stage: s for s in r.stages}
    assert [s.stage for s in r.stages] == ["quality", "dedup", "autolabel", "embed", "store"]
    for before, after in zip(r.stages, r.stages[1:], strict=False):
        assert after.entered == before.entered - before.removed
    assert stages["quality"].entered == r.processed
    assert stages["quality"].removed == r.blocked == len(world.planted.defects)
    assert stages["dedup"].removed == r.duplicates == 2
    assert stages["store"].entered == r.embedded == r.processed - r.blocked - r.duplicates
    assert r.quarantined == 0


def test_planted_defects_are_flagged_and_skip_the_expensive_stages(world: World) -> None:
    rows = world.rows()
    for name, issue in world.planted.defects.items():
        row = rows[world.sid[name]]
        assert issue in str(row["issues"]).split(","), (name, row["issues"])
        assert row["quality_blocked"] is True
        assert row[f"flag_{issue}"] is True and float(row[f"score_{issue}"]) > 0  # type: ignore[arg-type]
        assert row["embedded_kinds"] is None and row["auto_label"] is None
    clean = rows[world.sid["digit_00.png"]]
    assert clean["quality_blocked"] is False and clean["flag_blurry"] is False
    assert world.result.flagged["blurry"] >= 1 and world.result.flagged["grayscale"] >= 40


def test_duplicates_link_to_their_originals_within_and_across_datasets(world: World) -> None:
    rows = world.rows()
    copy, original = world.planted.near_duplicate
    assert rows[world.sid[copy]]["duplicate_of"] == world.sid[original]
    assert rows[world.sid[copy]]["duplicate_kind"] == "phash"
    text_copy, text_original = world.planted.text_duplicate
    assert rows[world.sid[text_copy]]["duplicate_of"] == world.sid[text_original]
    assert rows[world.sid[text_copy]]["duplicate_kind"] == "embedding"
    assert float(rows[world.sid[text_copy]]["duplicate_similarity"]) >= EnrichmentConfig().dedup_cosine  # type: ignore[arg-type]
    originals = [r for r in rows.values() if r["status"] == "enriched"]
    assert all(r["duplicate_of"] is None for r in originals)
    other = world.rows("more")
    kinds = {name: other[world.sid[name]]["duplicate_kind"] for name in world.second}
    assert kinds == {"copy_of_03.png": "exact", "shift_of_07.png": "phash"}
    for name, first in world.second.items():
        assert other[world.sid[name]]["duplicate_of"] == f"digits/{world.sid[first]}"
    assert other[world.sid["fresh.png"]]["status"] == "enriched"


def test_auto_labels_go_to_unlabelled_records_and_are_accepted_on_confidence(world: World) -> None:
    rows = world.rows()
    threshold = EnrichmentConfig().autolabel_threshold
    proposed = {sid for sid, r in rows.items() if r["auto_label"] is not None}
    survivors = {
        world.sid[n]
        for n in world.planted.unlabelled
        if rows[world.sid[n]]["status"] == "enriched"
        and not rows[world.sid[n]]["quality_blocked"]
        and rows[world.sid[n]]["modality"] != "audio"  # no auto-labeler for audio
    }
    assert proposed == survivors
    for sid in proposed:
        row = rows[sid]
        conf = float(row["auto_label_confidence"])  # type: ignore[arg-type]
        assert 0.0 < conf <= 1.0 and row["auto_label_accepted"] is (conf >= threshold)
        assert row["auto_label_model"]
    similar = rows[world.sid[world.planted.text_neighbour[0]]]
    assert similar["auto_label"] == "vehicle" and similar["auto_label_accepted"] is True
    assert world.result.auto_labeled == sum(1 for sid in proposed if rows[sid]["auto_label_accepted"])


def test_embeddings_are_zarr_arrays_in_sample_order(world: World) -> None:
    rt = world.rt
    store = VectorStore(rt.settings)
    assert store.kinds("digits", "v1") == {"image": "descriptor-v2", "text": "minilm", "audio": "logmel-v1"}
    ids, vectors = store.read("digits", "v1", "image")
    assert vectors.shape == (len(ids), 216) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    group = zarr.open_group(str(rt.settings.home / "enrichment" / "digits.zarr"), mode="r")
    assert group["v1/text/sample_ids"][:].tolist() == store.read("digits", "v1", "text")[0]
    embedded_images = {sid for sid, r in world.rows().items() if r["modality"] == "image" and r["embedded_kinds"]}
    assert set(ids) == embedded_images


def test_search_puts_the_planted_neighbour_first(world: World) -> None:
    rt = world.rt
    neighbour, sample = world.planted.text_neighbour
    hits = search_like(rt, "digits", world.sid[sample], k=3)
    assert hits[0].sample_id == world.sid[neighbour] and world.sid[sample] not in {h.sample_id for h in hits}
    image_neighbour, image = world.planted.image_neighbour
    hits = search_like(rt, "digits", world.sid[image], k=5)
    assert hits[0].sample_id == world.sid[image_neighbour] and hits[0].kind == "image"
    assert hits[0].similarity > hits[1].similarity
    found = search_text(rt, "digits", "a car driving on the highway", k=3)
    assert {h.sample_id for h in found[:2]} == {world.sid["car.txt"], world.sid["car_similar.txt"]}
    assert found[0].similarity >= found[1].similarity >= found[2].similarity


def test_metrics_are_reported_after_the_run(world: World) -> None:
    events = world.rt.events.list(pipeline="enrichment", types=["metrics"])
    values = {(v["name"], tuple(sorted(v["labels"].items()))): v["value"] for e in events if e.dataset == "digits" for v in e.data["values"]}
    assert values[("enrichment_processed", ())] == world.result.processed
    assert values[("enrichment_issue_rate", (("issue", "blurry"),))] == pytest.approx(
        world.result.flagged["blurry"] / world.result.modalities["image"]
    )
    assert values[("enrichment_dedup_rate", ())] == pytest.approx(2 / (world.result.processed - world.result.blocked))
    assert values[("enrichment_embedding_failures", ())] == 0
    assert values[("enrichment_model_errors", (("model", "minilm"),))] == 0
    assert 0 < values[("enrichment_autolabel_accept_rate", ())] <= 1
    assert values[("enrichment_throughput_per_s", ())] > 0
    gauges = {m.name for m in world.rt.metrics.registry.collect()}
    assert {"dataops_enrichment_processed", "dataops_enrichment_issue_rate"} <= gauges


def test_a_rerun_of_the_same_version_skips_everything(world: World) -> None:
    again = enrich(world.rt, "digits")
    assert again.version == "v1" and again.processed == 0 and again.skipped == world.result.processed


def test_manifest_export_gains_the_latest_enrichment(world: World, tmp_path: Path) -> None:
    out = tmp_path / "manifest.parquet"
    n = export_manifest(world.rt, "digits", out)
    table = pq.read_table(out)
    assert n == table.num_rows == world.result.processed
    for column in ("sample_id", "uri", "enrichment_version", "score_blurry", "flag_blurry", "auto_label",
                   "auto_label_confidence", "duplicate_of"):
        assert column in table.column_names
    rows = {r["sample_id"]: r for r in table.to_pylist()}
    blurry = rows[world.sid["defect_blurry.png"]]
    assert blurry["flag_blurry"] is True and blurry["enrichment_version"] == "v1"
    copy, original = world.planted.near_duplicate
    assert rows[world.sid[copy]]["duplicate_of"] == world.sid[original]


def test_an_embedding_failure_quarantines_only_that_record(world: World, tmp_path: Path) -> None:
    from pipelines.enrichment import MiniLMTextEmbedder, enrichment_job

    folder = tmp_path / "texts"
    folder.mkdir()
    for i, (name, (text, _)) in enumerate(list(TEXTS.items())[:3]):
        (folder / name).write_text(f"{text} Variant {i} of the story about things.", encoding="utf-8")
    (folder / "poison.txt").write_text("This sentence breaks the text model on purpose, poison.", encoding="utf-8")
    ingest(world.rt, str(folder), "fragile")

    class Breaks(MiniLMTextEmbedder):
        def embed(self, items):  # type: ignore[no-untyped-def]
            if any("poison" in str(x) for x in items):
                raise RuntimeError("CUDA error: device-side assert triggered")
            return super().embed(items)

    def broken_text_model(spec):  # type: ignore[no-untyped-def]
        spec.embedders.replace("minilm", Breaks())
        return spec

    job = enrichment_job("fragile")
    job.spec_wrappers.append(broken_text_model)
    summary = job.run(world.rt)
    result = job.last_result
    assert result is not None and summary.status == "succeeded"
    assert summary.read == summary.accepted + summary.duplicates + summary.quarantined == 4
    assert result.quarantined == 1 and result.quarantine_reasons == {"embedding_failed": 1}
    assert result.model_errors == {"minilm": 1} and result.embedded == 3
    with Session(world.rt.engine) as s:
        q = s.exec(select(QuarantineRow).where(QuarantineRow.run_id == summary.run_id)).one()
    assert q.reason == "embedding_failed" and q.detail and q.detail.startswith("minilm: RuntimeError")
    assert world.rt.objects.get(q.uri).startswith(b"This sentence breaks")
    events = world.rt.events.list(pipeline="enrichment", run_id=summary.run_id, types=["metrics"])
    values = {v["name"]: v["value"] for v in events[-1].data["values"] if not v["labels"]}
    assert values["enrichment_embedding_failures"] == 1
    assert values["enrichment_embedding_failure_rate"] == pytest.approx(1 / 4)


def test_reenrichment_as_v2_leaves_raw_untouched_and_v1_readable(world: World) -> None:
    rt = world.rt
    raw_before = rt.offline.current_snapshot_id("digits")
    raw_snapshots = len(rt.offline.snapshots("digits"))
    v1_rows = read_enrichment(rt, "digits", "v1").num_rows
    rt.configs.set("enrichment", "digits", EnrichmentConfig, {"embedding_model_version": 1}, actor="test", reason="v2")
    v2 = reenrich(rt, "digits")
    assert v2.version == "v2" and v2.embedding_model == "descriptor-v1"
    assert v2.processed == world.result.processed and v2.skipped == 0
    assert rt.offline.current_snapshot_id("digits") == raw_before == v2.raw_snapshot_id
    assert len(rt.offline.snapshots("digits")) == raw_snapshots
    assert read_enrichment(rt, "digits", "v1").num_rows == v1_rows
    assert read_enrichment(rt, "digits", "v2").num_rows == v2.processed
    store = VectorStore(rt.settings)
    assert store.read("digits", "v1", "image")[1].shape[1] == 216
    assert store.read("digits", "v2", "image")[1].shape[1] == 152
    # Its own (cheap) image embedding is its dedup signature: nothing stored twice.
    assert store.kinds("digits", "v2") == {"image": "descriptor-v1", "text": "minilm", "audio": "logmel-v1"}
    assert v2.duplicates == world.result.duplicates
    assert enrichment_table("digits") in rt.offline.tables()
    # Without --version, the newest version made by the configured models is reused.
    assert enrich(rt, "digits").version == "v2"


def test_a_paused_run_resumes_and_publishes_every_batch(world: World, tmp_path: Path) -> None:
    from pipelines.enrichment import enrichment_job
    from pipelines.runtime import RunProgress

    folder = tmp_path / "paused"
    folder.mkdir()
    for i, (name, (text, _)) in enumerate(TEXTS.items()):
        (folder / name).write_text(f"Note {i}: {text}", encoding="utf-8")
    ingest(world.rt, str(folder), "pausing")
    world.rt.configs.set("enrichment", "pausing", EnrichmentConfig, {"batch_size": 3}, actor="test", reason="batches")

    def pause_after_first_batch(p: RunProgress) -> None:
        world.rt.control.pause("enrichment", "pausing", by="test")

    job = enrichment_job("pausing")
    first = job.run(world.rt, progress=pause_after_first_batch)
    assert first.status == "paused" and first.read == 3
    assert "pausing__enrichment" not in world.rt.offline.tables()  # nothing published yet
    world.rt.control.resume("enrichment", "pausing", by="test")
    second = job.run(world.rt)
    assert second.status == "succeeded" and second.run_id == first.run_id
    assert second.read == len(TEXTS) == second.accepted + second.duplicates + second.quarantined
    result = job.last_result
    assert result is not None and result.processed == len(TEXTS)
    assert read_enrichment(world.rt, "pausing", result.version).num_rows == len(TEXTS)
