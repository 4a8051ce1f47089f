"""The annotation pipeline end to end: an ingested digits dataset, a real
torch classifier, simulated annotators, the labels snapshot and the figures."""

from __future__ import annotations

import json
import statistics
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from pipelines.annotation import (
    AnnotationConfig,
    AnnotationQueue,
    ImageClassifier,
    SimulatedAnnotators,
    annotation_job,
    current_labels,
    digit_images,
    write_digits,
)
from pipelines.ingestion import ingest
from pipelines.runtime import QuarantineRow, Runtime, SampleRow, utcnow
from tools._live_observe import event_signals

pytestmark = pytest.mark.slow  # a real torch model trained once per module, and full runs

DIGITS = [str(i) for i in range(10)]
DS, SRC = "digits-labels", "digits"


@pytest.fixture(scope="module")
def trained() -> ImageClassifier:
    images, labels = digit_images(200, offset=1000)
    return ImageClassifier(DIGITS, seed=0, steps=150).fit(images, labels)


def _ingest(rt: Runtime, folder: Path, n: int, offset: int = 0) -> int:
    write_digits(folder, n, offset=offset)
    summary = ingest(rt, str(folder), SRC)
    assert summary.status == "succeeded"
    return summary.accepted


def _truth(rt: Runtime) -> dict[str, str]:
    with Session(rt.engine) as s:
        return {r.sample_id: r.meta["label"] for r in s.exec(select(SampleRow).where(SampleRow.dataset == SRC))}


def _configure(rt: Runtime, **changes: object) -> None:
    rt.configs.set("annotation", DS, AnnotationConfig, changes, actor="test", reason="test")


def _metrics(rt: Runtime, start: object) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for sig in event_signals(rt.events.list(pipeline="annotation", types=["metrics"]), start):  # type: ignore[arg-type]
        if sig.kind == "metric":
            out.setdefault(sig.name, {})[json.dumps(sig.labels, sort_keys=True)] = sig.value
    return out


def test_routes_by_threshold_and_writes_labels_with_provenance(
    runtime: Runtime, tmp_path: Path, trained: ImageClassifier
) -> None:
    n = _ingest(runtime, tmp_path / "in", 40)
    truth = _truth(runtime)
    _configure(runtime, autolabel_threshold=0.99, audit_rate=0.5, review_agreement_below=0.6)
    pool = SimulatedAnnotators(["ann-1", "ann-2", "ann-3"], 1.0, capacity_per_run=100)
    start = utcnow() - timedelta(seconds=1)

    s = annotation_job(DS, SRC, pool=pool, labeler_factory=lambda rt: trained, labels=DIGITS).run(runtime)

    assert s.status == "succeeded", s.error
    assert s.read == n == s.accepted + s.quarantined and s.quarantined == 0
    tasks = AnnotationQueue(runtime.engine, DS).tasks()
    assert len(tasks) == n
    auto = [t for t in tasks if (t.auto_confidence or 0) >= 0.99]
    people = [t for t in tasks if (t.auto_confidence or 0) < 0.99]
    assert auto and people
    for t in auto:
        assert t.auto_model == trained.model_id
        # Audited ones were also answered by people, whose consensus replaced the model's label.
        assert (t.status, t.provenance["source"]) == (("accepted", "human") if t.audit else ("auto_accepted", "auto"))
    for t in people:
        assert not t.audit and t.status == "accepted" and t.provenance["source"] == "human"
        assert sorted(t.provenance["annotators"]) == pool.names and t.final_label == truth[t.sample_id]
    audited = [t for t in auto if t.audit]
    assert 0 < len(audited) < len(auto)
    # Active-learning order: every queued task was given a strategy and a priority band.
    assert {"uncertain", "diverse"} <= {t.strategy for t in people} <= {"uncertain", "diverse", "random"}
    band = {"random": 0, "diverse": 1, "uncertain": 2}
    assert all(int(t.priority * 3 - 1e-9) == band[t.strategy] for t in people)

    # The labels snapshot: one row per accepted task, with where the label came from.
    snaps = runtime.offline.snapshots(DS)
    assert snaps[-1].snapshot_id == s.snapshot_id and snaps[-1].run_id == s.run_id
    rows = {r["sample_id"]: r for r in current_labels(runtime, DS).to_pylist()}
    assert set(rows) == {t.sample_id for t in tasks}
    by_sample = {t.sample_id: t for t in tasks}
    for sid, row in rows.items():
        task = by_sample[sid]
        assert row["label"] == task.final_label and row["run_id"] == s.run_id and row["model"] == trained.model_id
        if row["source"] == "auto":
            assert row["confidence"] == pytest.approx(task.auto_confidence) and json.loads(row["annotators"]) == []
        else:
            assert row["source"] == "human" and row["agreement"] == pytest.approx(1.0)
            assert sorted(json.loads(row["annotators"])) == pool.names

    # The figures, read back as the monitor's metric signals.
    m = _metrics(runtime, start)
    assert m["annotation_backlog"]["{}"] == 0
    assert m["expert_review_backlog"]["{}"] == 0
    assert m["annotation_throughput_per_h"]["{}"] == len(people) + len(audited)
    assert m["annotation_forecast_clear_h"]["{}"] == 0
    assert m["autolabel_accept_rate"]["{}"] == pytest.approx(len(auto) / n)
    assert m["autolabel_confidence_mean"]["{}"] == pytest.approx(statistics.fmean(t.auto_confidence for t in tasks))
    assert m["annotation_agreement"]["{}"] == pytest.approx(1.0)  # perfect annotators
    assert m["annotation_majority_share"]["{}"] == pytest.approx(1.0)
    assert len(audited) >= 5  # enough audits for the figure
    wrong = sum(1 for t in audited if t.final_label != t.auto_label)
    assert m["autolabel_audit_error_rate"]["{}"] == pytest.approx(wrong / len(audited))
    for name in pool.names:
        assert m["annotator_agreement"][json.dumps({"annotator": name})] == 1.0
        assert m["annotator_outlier"][json.dumps({"annotator": name})] == 0.0
    assert runtime.metrics.registry.get_sample_value(
        "dataops_autolabel_accept_rate", {"pipeline": "annotation", "dataset": DS}
    ) == pytest.approx(len(auto) / n)


def test_rerun_skips_done_samples_and_takes_new_ones(
    runtime: Runtime, tmp_path: Path, trained: ImageClassifier
) -> None:
    n = _ingest(runtime, tmp_path / "a", 20)
    job = annotation_job(DS, SRC, labeler_factory=lambda rt: trained, labels=DIGITS)
    first = job.run(runtime)
    assert first.read == first.accepted == n
    again = job.run(runtime)
    assert again.status == "succeeded" and again.read == 0 and again.snapshot_id is None
    assert len(AnnotationQueue(runtime.engine, DS).tasks()) == n

    more = _ingest(runtime, tmp_path / "b", 10, offset=300)
    third = job.run(runtime)
    assert third.read == third.accepted == more
    assert len(AnnotationQueue(runtime.engine, DS).tasks()) == n + more


def test_quarantined_annotator_is_requeued_and_reclosed_without_them(runtime: Runtime, tmp_path: Path) -> None:
    n = _ingest(runtime, tmp_path / "in", 30)
    truth = _truth(runtime)
    _configure(runtime, review_agreement_below=0.6)
    # "rnd" answers first and at random; with the untrained model nothing is auto-accepted.
    pool = SimulatedAnnotators(["rnd", "a", "b", "c"], 1.0, capacity_per_run=100, random_answers={"rnd"}, seed=5)
    job = annotation_job(DS, SRC, pool=pool, labels=DIGITS)
    start = utcnow() - timedelta(seconds=1)

    first = job.run(runtime)
    assert first.read == n
    queue = AnnotationQueue(runtime.engine, DS)
    assert all(t.status in ("accepted", "expert_review") for t in queue.tasks())
    m = _metrics(runtime, start)
    assert m["annotator_outlier"][json.dumps({"annotator": "rnd"})] == 1.0
    assert m["annotator_agreement"][json.dumps({"annotator": "rnd"})] < 0.5
    assert m["annotator_outlier"][json.dumps({"annotator": "a"})] == 0.0

    q = queue.quarantine_annotator("rnd", "answers at random")
    assert len(q.requeued) == n
    assert queue.stats().backlog == n

    second = job.run(runtime)
    assert second.status == "succeeded" and second.read == 0 and second.snapshot_id is not None
    for task in queue.tasks():
        assert task.status == "accepted"
        assert sorted(task.provenance["annotators"]) == ["a", "b", "c"]
        assert task.final_label == truth[task.sample_id]
    rows = current_labels(runtime, DS).to_pylist()
    assert len(rows) == n and all("rnd" not in json.loads(r["annotators"]) for r in rows)
    assert {r["run_id"] for r in rows} == {second.run_id}


def test_what_cannot_be_labelled_is_quarantined(runtime: Runtime, tmp_path: Path, trained: ImageClassifier) -> None:
    folder = tmp_path / "in"
    write_digits(folder, 6)
    (folder / "note.txt").write_text("a caption that is not a digit image", encoding="utf-8")
    assert ingest(runtime, str(folder), SRC).accepted == 7
    with Session(runtime.engine) as s:
        gone = s.exec(select(SampleRow).where(SampleRow.modality == "image")).first()
    assert gone is not None
    Path(gone.uri.removeprefix("file://")).unlink()

    s = annotation_job(DS, SRC, labeler_factory=lambda rt: trained, labels=DIGITS).run(runtime)

    assert s.read == 7 and s.accepted == 5 and s.quarantined == 2
    assert s.read == s.accepted + s.quarantined
    assert s.quarantine_reasons == {"modality_mismatch": 1, "missing_object": 1}
    with Session(runtime.engine) as db:
        reasons = {r.reason for r in db.exec(select(QuarantineRow).where(QuarantineRow.run_id == s.run_id))}
    assert reasons == {"modality_mismatch", "missing_object"}
