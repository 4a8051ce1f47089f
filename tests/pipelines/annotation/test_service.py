"""Annotation projects, Label Studio import refusals, expert review, the
retrain hook and text labelling with the bundled MiniLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InputError, NotFoundError
from pipelines.annotation import (
    AnnotationConfig,
    AnnotationQueue,
    ImageClassifier,
    SimulatedAnnotators,
    annotation_job,
    annotation_status,
    current_labels,
    export_label_studio,
    import_label_studio,
    model_path,
    resolve_project,
    review_decide,
    review_list,
    run_annotation,
    write_digits,
)
from pipelines.ingestion import ingest
from pipelines.runtime import Runtime

DIGITS = [str(i) for i in range(10)]
DS, SRC = "digits-labels", "digits"


def _digits(rt: Runtime, folder: Path, n: int, offset: int = 0) -> int:
    write_digits(folder, n, offset=offset)
    return ingest(rt, str(folder), SRC).accepted


def _ls_export(tasks: list[dict], answers: dict[str, str]) -> list[dict]:
    """A Label Studio JSON export: every task answered by each annotator."""
    return [
        {
            "id": i + 1,
            "data": t["data"],
            "annotations": [
                {
                    "id": 100 * (i + 1) + j,
                    "completed_by": {"id": j, "email": who},
                    "result": [
                        {"type": "choices", "from_name": "label", "to_name": "image", "value": {"choices": [label]}}
                    ],
                    "lead_time": 3.5,
                }
                for j, (who, label) in enumerate(answers.items())
            ],
        }
        for i, t in enumerate(tasks)
    ]


def test_project_needs_source_labels_and_its_own_name(runtime: Runtime, tmp_path: Path) -> None:
    _digits(runtime, tmp_path / "in", 4)
    with pytest.raises(InputError, match="--labels"):
        resolve_project(runtime, DS, SRC)
    with pytest.raises(InputError, match="--from"):
        resolve_project(runtime, DS, labels=DIGITS)
    with pytest.raises(InputError, match="its own name"):
        resolve_project(runtime, SRC, SRC, labels=DIGITS)
    with pytest.raises(NotFoundError, match="unknown dataset 'nope'"):
        resolve_project(runtime, DS, "nope", labels=DIGITS)
    project = resolve_project(runtime, DS, SRC, labels=DIGITS)
    assert project.modality == "image" and project.labels == DIGITS
    assert resolve_project(runtime, DS) == project  # stored
    with pytest.raises(InputError, match="uses labels"):
        resolve_project(runtime, DS, labels=["cat", "dog"])
    with pytest.raises(InputError, match="labels 'digits', not 'other'"):
        resolve_project(runtime, DS, "other")


def test_label_studio_import_refuses_with_reasons_and_review_settles(runtime: Runtime, tmp_path: Path) -> None:
    n = _digits(runtime, tmp_path / "in", 8)
    runtime.configs.set("annotation", DS, AnnotationConfig, {"review_agreement_below": 1.0}, actor="t", reason="t")
    assert run_annotation(runtime, DS, SRC, labels=DIGITS).accepted == n  # untrained model: everything to people
    tasks, config = export_label_studio(runtime, DS)
    assert len(tasks) == n and '<Choice value="7"' in config
    assert all(t["predictions"][0]["model_version"] == "mlp-gray16" for t in tasks)

    queue = AnnotationQueue(runtime.engine, DS)
    queue.quarantine_annotator("mallory", "copies answers")
    export = _ls_export(tasks[:2], {"ann@x.org": "3", "bob@x.org": "3", "mallory": "3", "eve@x.org": "3"})
    export[0]["annotations"][3]["result"][0]["value"]["choices"] = ["cat"]
    export.append({"id": 99, "data": {"image": "x.png", "task_id": "t_missing"}, "annotations": export[0]["annotations"]})
    report = import_label_studio(runtime, DS, export)

    assert report.annotations == 12 and report.submitted == 5
    reasons = [(r.annotator, r.reason) for r in report.refused]
    assert ("mallory", "annotator 'mallory' is quarantined (copies answers); their answers are not taken") in reasons
    assert any(who == "eve@x.org" and "unknown label(s) cat" in why for who, why in reasons)
    assert sum(1 for _, why in reasons if why == "no such task in this dataset") == 4
    assert report.ready_for_consensus == 1  # the first task lost two of its four answers
    with pytest.raises(InputError, match="not valid JSON"):
        import_label_studio(runtime, DS, "{not json")

    # The next run closes the complete one (unanimous 3 of 3, so accepted even with review at 1.0).
    s = run_annotation(runtime, DS)
    assert s.read == 0
    accepted = [t for t in queue.tasks() if t.status == "accepted"]
    assert len(accepted) == 1 and accepted[0].final_label == "3"
    assert sorted(accepted[0].provenance["annotators"]) == ["ann@x.org", "bob@x.org", "eve@x.org"]
    assert {r["label"] for r in current_labels(runtime, DS).to_pylist()} == {"3"}

    # A split goes to an expert, who settles it.
    third = queue.task(tasks[2]["data"]["task_id"])
    for who, label in (("a", "1"), ("b", "1"), ("c", "7")):
        queue.submit(third.id, who, label=label)
    run_annotation(runtime, DS)
    (item,) = review_list(runtime, DS)
    assert item.task_id == third.id and item.votes == {"1": 2, "7": 1}
    with pytest.raises(InputError, match="unknown label"):
        review_decide(runtime, DS, third.sample_id, expert="dr-x", label="one")
    row = review_decide(runtime, DS, third.sample_id, expert="dr-x", label="7")
    assert row.status == "accepted" and row.final_label == "7" and row.provenance["source"] == "expert"
    with pytest.raises(InputError, match="not waiting for expert review"):
        review_decide(runtime, DS, third.id, expert="dr-x", label="1")
    st = annotation_status(runtime, DS)
    assert st.by_status["accepted"] == 2 and st.expert_backlog == 0 and st.backlog == n - 2
    assert {a.name for a in st.annotators} >= {"ann@x.org", "bob@x.org", "a", "b", "c"}


@pytest.mark.slow
def test_enough_human_labels_retrain_the_model_the_next_run_loads(runtime: Runtime, tmp_path: Path) -> None:
    n = _digits(runtime, tmp_path / "a", 30)
    runtime.configs.set("annotation", DS, AnnotationConfig, {"review_agreement_below": 0.6}, actor="t", reason="t")
    pool = SimulatedAnnotators(["a", "b", "c"], 1.0, capacity_per_run=100)
    job = annotation_job(DS, SRC, pool=pool, labels=DIGITS, retrain_every=20)

    first = job.run(runtime)
    assert first.read == n
    (event,) = runtime.events.list(pipeline="annotation", types=["model_retrained"])
    assert event.data["labels"] == n and event.data["previous"] == 0
    saved = ImageClassifier.load(model_path(runtime.settings, DS))
    assert saved.trained_on == n

    queue = AnnotationQueue(runtime.engine, DS)
    before = {t.id for t in queue.tasks()}
    assert all(t.auto_confidence == pytest.approx(0.1) for t in queue.tasks())  # untrained: uniform
    more = _digits(runtime, tmp_path / "b", 10, offset=400)
    second = annotation_job(DS, SRC, labels=DIGITS).run(runtime)
    assert second.read == more
    new = [t for t in queue.tasks() if t.id not in before]
    assert len(new) == more
    # Proposals now come from the retrained model, not the uniform untrained one.
    assert all(t.auto_model == saved.model_id for t in new)
    assert max(t.auto_confidence or 0 for t in new) > 0.5


@pytest.mark.slow
def test_text_samples_get_zero_shot_proposals(runtime: Runtime, tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    texts = {
        "sports": ["The striker scored twice in the final match", "The team won the championship game"],
        "cooking": ["Whisk the eggs and fold in the flour", "Simmer the sauce with garlic and basil"],
    }
    for label, items in texts.items():
        for i, text in enumerate(items):
            (folder / f"{label}_{i}.txt").write_text(text, encoding="utf-8")
    ingest(runtime, str(folder), "posts")
    runtime.configs.set("annotation", "posts-labels", AnnotationConfig, {"autolabel_threshold": 0.5}, actor="t", reason="t")

    s = annotation_job("posts-labels", "posts", labels=["sports", "cooking"]).run(runtime)

    assert s.read == s.accepted == 4
    tasks = AnnotationQueue(runtime.engine, "posts-labels").tasks()
    assert all(t.modality == "text" and t.auto_model == "minilm-zero-shot" for t in tasks)
    for t in tasks:
        assert t.auto_label is not None and t.meta["text"] in texts[t.auto_label]
        assert t.status == ("auto_accepted" if (t.auto_confidence or 0) >= 0.5 else "queued")
