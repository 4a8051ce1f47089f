"""The annotation and enrichment faults on real pipeline objects: what each
changes while active and what healing puts back. (The agent loop over them
is in tests/agents/test_annotation_loop.py and test_enrichment_loop.py.)"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.errors import InputError
from evals.faults import IssueSpike, make_fault
from pipelines.annotation import (
    AnnotationPipeline,
    AnnotationQueue,
    ImageClassifier,
    SimulatedAnnotators,
    TaskSeed,
    annotation_job,
)
from pipelines.runtime import Runtime, SourceRecord

LABELS = [str(d) for d in range(10)]


def _spec(pool: SimulatedAnnotators | None = None) -> AnnotationPipeline:
    return AnnotationPipeline(ImageClassifier(LABELS), source_dataset="digits", modality="image", pool=pool)


def _pool() -> SimulatedAnnotators:
    return SimulatedAnnotators(["ann-a", "ann-b"], 1.0, seed=3)


def test_a_random_annotator_joins_first_and_leaves_on_heal(runtime: Runtime) -> None:
    job = annotation_job("digits-labels", "digits")
    fault = make_fault("annotator_random")
    fault.apply(job, runtime)
    pool = _pool()
    spec = job.spec_wrappers[0](_spec(pool))
    assert pool.names == ["vendor-new-01", "ann-a", "ann-b"]
    answers = {pool.answer("vendor-new-01", f"s{i}", {"label": "3"}, LABELS) for i in range(40)}
    assert len(answers) > 5, "random answers spread over the labels"
    assert {pool.answer("ann-a", f"s{i}", {"label": "3"}, LABELS) for i in range(40)} == {"3"}
    assert spec.pool is pool and fault.effects == {"annotator": "vendor-new-01", "joined": True}
    fault.heal()
    assert pool.names == ["ann-a", "ann-b"] and not pool.random_answers and job.spec_wrappers == []


def test_a_pool_member_can_turn_random(runtime: Runtime) -> None:
    fault = make_fault("annotator_random", annotator="ann-b")
    job = annotation_job("digits-labels", "digits")
    fault.apply(job, runtime)
    pool = _pool()
    job.spec_wrappers[0](_spec(pool))
    assert pool.names == ["ann-a", "ann-b"] and pool.random_answers == {"ann-b"}
    fault.heal()
    assert pool.random_answers == set()


def test_faults_need_a_simulated_pool(runtime: Runtime) -> None:
    fault = make_fault("annotator_random")
    job = annotation_job("digits-labels", "digits")
    fault.apply(job, runtime)
    with pytest.raises(InputError, match="simulated annotator pool"):
        job.spec_wrappers[0](_spec(None))


@pytest.mark.parametrize("collapsed", [False, True])
def test_a_degraded_labeler_is_confidently_wrong(runtime: Runtime, collapsed: bool) -> None:
    fault = make_fault("autolabel_degraded", collapsed=collapsed)
    job = annotation_job("digits-labels", "digits")
    fault.apply(job, runtime)
    inner = ImageClassifier(LABELS)
    spec = job.spec_wrappers[0](AnnotationPipeline(inner, source_dataset="digits", modality="image"))
    images = [np.random.default_rng(i).integers(0, 255, (16, 16), dtype=np.uint8) for i in range(6)]
    truth = inner.predict_proba(images).argmax(axis=1)
    proposals = spec.labeler.propose(images)
    assert all(p.confidence == pytest.approx(0.965) for p in proposals)
    picked = [LABELS.index(p.label) for p in proposals]
    assert picked == ([0] * 6 if collapsed else [int((t + 1) % 10) for t in truth])
    assert fault.effects["proposals"] == 6 and proposals[0].model.endswith("-degraded")
    fault.heal()
    assert [p.label for p in spec.labeler.propose(images)] == [LABELS[int(t)] for t in truth]


def test_fault_parameters_are_checked() -> None:
    with pytest.raises(InputError, match="confidence must be in"):
        make_fault("autolabel_degraded", confidence=1.2)
    with pytest.raises(InputError, match="capacity_factor"):
        make_fault("annotation_backlog_surge", capacity_factor=0)
    with pytest.raises(InputError, match="limit must be >= 1"):
        make_fault("embedding_oom", limit=0)
    with pytest.raises(InputError, match="fraction must be in"):
        make_fault("enrichment_issue_spike", fraction=0)
    with pytest.raises(InputError, match="version must be >= 1"):
        make_fault("embedding_model_failure", version=0)


def test_a_backlog_surge_queues_days_of_work_and_heals(runtime: Runtime) -> None:
    queue = AnnotationQueue(runtime.engine, "digits-labels")
    queue.enqueue([TaskSeed(sample_id=f"real-{i}", uri=f"mem://{i}") for i in range(5)])
    job = annotation_job("digits-labels", "digits")
    fault = make_fault("annotation_backlog_surge", days=2.0, min_tasks=50)
    fault.apply(job, runtime)
    # No throughput yet: a day's work counts as one task an hour, and at least min_tasks.
    assert fault.effects["tasks"] == 50 and queue.stats().backlog == 55
    pool = SimulatedAnnotators(["ann-a"], 1.0, capacity_per_run=40)
    job.spec_wrappers[0](_spec(pool))
    assert pool.capacity_per_run == 20
    fault.heal()
    assert queue.stats().backlog == 5 and pool.capacity_per_run == 40


def _png(size: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    img = (rng.random((size, size)) > 0.5).astype(np.uint8) * 255
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _sharpness(data: bytes) -> float:
    arr = np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float64)
    return float(np.abs(np.diff(arr, axis=1)).mean())


def test_an_issue_spike_blurs_a_share_of_the_images() -> None:
    fault = make_fault("enrichment_issue_spike", fraction=1.0)
    assert isinstance(fault, IssueSpike)
    image = SourceRecord(source="s/1", data=_png(), modality="image")
    text = SourceRecord(source="s/2", data=b"hello", modality="text")
    blurred = fault.blur(image)
    assert _sharpness(blurred.data) < _sharpness(image.data) / 5
    assert blurred.source == image.source and fault.blur(text) is text
    some = make_fault("enrichment_issue_spike", fraction=0.3)
    assert isinstance(some, IssueSpike)
    data = _png(16)
    changed = sum(some.blur(SourceRecord(source=f"s/{i}", data=data, modality="image")).data != data for i in range(60))
    assert 8 <= changed <= 30 and some.effects["blurred"] == changed
