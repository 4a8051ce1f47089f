"""Annotation as functions: the job the supervisor runs, the source it reads
(an ingested dataset's accepted samples), and what the CLI calls (status,
Label Studio export and import, expert review, the terminal labeller)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlmodel import Session, col, func, select

from app.errors import ConfigError, InputError, NotFoundError
from app.settings import Settings
from pipelines.annotation._autolabel import AutoLabeler, ImageClassifier, make_labeler
from pipelines.annotation._labelstudio import LSAnnotation, export_tasks, label_config, parse_export
from pipelines.annotation._models import AnnotationTaskRow
from pipelines.annotation._pipeline import RETRAIN_EVERY, AnnotationConfig, AnnotationPipeline, DatasetSampleSource
from pipelines.annotation._pool import AnnotatorPool
from pipelines.annotation._queue import AnnotationQueue
from pipelines.annotation._writeback import close_expert, current_labels, recent_agreement
from pipelines.runtime import Job, RunSummary, Runtime, SampleRow
from pipelines.runtime._spec import ProgressFn

__all__ = [
    "AnnotationProject",
    "AnnotationStatus",
    "AnnotatorStatus",
    "ImportReport",
    "Refusal",
    "ReviewItem",
    "annotation_status",
    "annotator_status",
    "export_label_studio",
    "import_label_studio",
    "project_of",
    "review_decide",
    "review_list",
    "submit_label",
    "tasks_for",
    "LabelerFactory",
    "annotation_job",
    "default_labeler",
    "load_project",
    "model_path",
    "resolve_project",
    "run_annotation",
]

LabelerFactory = Callable[[Runtime], AutoLabeler]


# --------------------------------------------------------------------- project
class AnnotationProject(BaseModel):
    """What an annotation dataset labels: which samples, with which labels."""

    dataset: str
    source_dataset: str
    labels: list[str]
    modality: Literal["image", "text"]
    descriptions: dict[str, str] = {}


def _project_dir(settings: Settings, dataset: str) -> Path:
    return settings.home / "annotation" / dataset


def model_path(settings: Settings, dataset: str) -> Path:
    """Where the dataset's retrained image model is kept."""
    return _project_dir(settings, dataset) / "image_classifier.pt"


def load_project(settings: Settings, dataset: str) -> AnnotationProject | None:
    path = _project_dir(settings, dataset) / "project.json"
    if not path.is_file():
        return None
    try:
        return AnnotationProject.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as exc:
        raise ConfigError(f"{path} is not a valid annotation project: {exc}") from None


def _modality(rt: Runtime, dataset: str) -> Literal["image", "text"]:
    with Session(rt.engine) as s:
        counts = dict(
            s.exec(
                select(SampleRow.modality, func.count())
                .where(SampleRow.dataset == dataset, col(SampleRow.committed).is_(True))
                .group_by(col(SampleRow.modality))
            ).all()
        )
    usable = Counter({m: int(c) for m, c in counts.items() if m in ("image", "text")})
    if not usable:
        found = ", ".join(sorted(counts)) or "none"
        raise InputError(f"dataset {dataset!r} has no accepted image or text samples to annotate (found: {found})")
    return usable.most_common(1)[0][0]  # type: ignore[return-value]


def resolve_project(
    rt: Runtime,
    dataset: str,
    source_dataset: str | None = None,
    *,
    labels: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> AnnotationProject:
    """The stored project of ``dataset``, created on first use (which needs the
    source dataset and the labels); a different source or label set later is an error."""
    if not dataset or "/" in dataset:
        raise InputError(f"invalid dataset name {dataset!r}")
    given = [s.strip() for s in labels or () if s.strip()]
    stored = load_project(rt.settings, dataset)
    if stored is not None:
        if source_dataset and source_dataset != stored.source_dataset:
            raise InputError(f"annotation dataset {dataset!r} labels {stored.source_dataset!r}, not {source_dataset!r}")
        if given and given != stored.labels:
            raise InputError(f"annotation dataset {dataset!r} uses labels {','.join(stored.labels)}; got {','.join(given)}")
        return stored
    if not source_dataset:
        raise InputError(f"annotation dataset {dataset!r} is new: name the dataset to label (--from)")
    if not given:
        raise InputError(f"annotation dataset {dataset!r} is new: give its labels (--labels a,b,c)")
    if len(set(given)) != len(given) or len(given) < 2:
        raise InputError(f"labels must be at least two distinct names, got {','.join(given)}")
    if dataset == source_dataset:
        raise InputError(f"the annotation dataset needs its own name, e.g. {dataset}-labels")
    rt.dataset(source_dataset)
    project = AnnotationProject(
        dataset=dataset,
        source_dataset=source_dataset,
        labels=given,
        modality=_modality(rt, source_dataset),
        descriptions=dict(descriptions or {}),
    )
    path = _project_dir(rt.settings, dataset) / "project.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(project.model_dump_json(indent=2), encoding="utf-8")
    rt.ensure_dataset(dataset, "annotation")
    return project


def project_of(rt: Runtime, dataset: str) -> AnnotationProject:
    """The project of an existing annotation dataset."""
    rt.dataset(dataset)
    project = load_project(rt.settings, dataset)
    if project is None:
        raise NotFoundError(f"{dataset!r} is not an annotation dataset (start one with `dataops annotate run`)")
    return project


def default_labeler(rt: Runtime, project: AnnotationProject) -> AutoLabeler:
    """The retrained image model when one was saved for these labels, else
    the configured labeler for the project's modality."""
    path = model_path(rt.settings, project.dataset)
    if project.modality == "image" and path.is_file():
        saved = ImageClassifier.load(path)
        if saved.labels == project.labels:
            return saved
    return make_labeler(rt.settings, project.modality, project.labels, project.descriptions or None)


# --------------------------------------------------------------------- jobs
def annotation_job(
    dataset: str,
    source_dataset: str,
    *,
    pool: AnnotatorPool | None = None,
    labeler_factory: LabelerFactory | None = None,
    labels: Sequence[str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    retrain_every: int = RETRAIN_EVERY,
) -> Job:
    """A re-runnable annotation job over ``source_dataset``'s accepted samples
    (each run takes the samples earlier runs have not)."""
    bound: dict[str, Runtime] = {}

    def make_spec(rt: Runtime) -> AnnotationPipeline:
        bound["rt"] = rt
        project = resolve_project(rt, dataset, source_dataset, labels=labels, descriptions=descriptions)
        labeler = labeler_factory(rt) if labeler_factory is not None else default_labeler(rt, project)
        return AnnotationPipeline(
            labeler,
            source_dataset=source_dataset,
            modality=project.modality,
            pool=pool,
            model_path=model_path(rt.settings, dataset),
            retrain_every=retrain_every,
        )

    return Job(
        pipeline="annotation",
        dataset=dataset,
        source_uri=f"dataset://{source_dataset}",
        open_source=lambda: DatasetSampleSource(source_dataset, lambda: bound.get("rt"), skip_done_in=dataset),
        make_spec=make_spec,
    )


def run_annotation(
    rt: Runtime,
    dataset: str,
    source_dataset: str | None = None,
    *,
    labels: Sequence[str] | None = None,
    pool: AnnotatorPool | None = None,
    labeler_factory: LabelerFactory | None = None,
    progress: ProgressFn | None = None,
) -> RunSummary:
    """One annotation run (the first one creates the project)."""
    project = resolve_project(rt, dataset, source_dataset, labels=labels)
    job = annotation_job(dataset, project.source_dataset, pool=pool, labeler_factory=labeler_factory)
    return job.run(rt, progress=progress)


def current_config(rt: Runtime, dataset: str) -> AnnotationConfig:
    _, cfg = rt.configs.current("annotation", dataset, AnnotationConfig)
    return cfg


# --------------------------------------------------------------------- status
class AnnotatorStatus(BaseModel):
    name: str
    agreement: float | None
    tasks: int
    outlier: bool
    quarantined: bool
    reason: str | None = None


class AnnotationStatus(BaseModel):
    """The queue's figures (:class:`QueueStats`, flattened) with agreement,
    annotators and config."""

    dataset: str
    source_dataset: str
    labels: list[str]
    backlog: int
    oldest_age_s: float
    done_last_hour: int
    throughput_per_h: float
    forecast_clear_h: float | None
    by_status: dict[str, int]
    expert_backlog: int
    audit_pending: int
    agreement: float | None  # Fleiss' kappa over recently decided tasks
    majority_share: float | None
    decided: int
    labels_accepted: int
    annotators: list[AnnotatorStatus]
    config: dict[str, Any]


def _queue(rt: Runtime, dataset: str) -> tuple[AnnotationQueue, AnnotationConfig]:
    cfg = current_config(rt, dataset)
    return AnnotationQueue(rt.engine, dataset, annotators_per_task=cfg.annotators_per_task), cfg


def annotator_status(rt: Runtime, dataset: str) -> list[AnnotatorStatus]:
    """Everyone who answered in ``dataset``: last measured quality, quarantine."""
    project_of(rt, dataset)
    queue, _ = _queue(rt, dataset)
    return [
        AnnotatorStatus(
            name=a.name, agreement=a.agreement, tasks=a.tasks, outlier=a.outlier, quarantined=a.quarantined, reason=a.reason
        )
        for a in sorted(queue.annotators(), key=lambda a: a.name)
    ]


def annotation_status(rt: Runtime, dataset: str) -> AnnotationStatus:
    project = project_of(rt, dataset)
    queue, cfg = _queue(rt, dataset)
    stats = queue.stats()
    kappa, share, decided = recent_agreement(queue)
    return AnnotationStatus(
        dataset=dataset,
        source_dataset=project.source_dataset,
        labels=project.labels,
        **{**asdict(stats), "oldest_age_s": round(stats.oldest_age_s, 1)},
        agreement=kappa,
        majority_share=share,
        decided=decided,
        labels_accepted=current_labels(rt, dataset).num_rows,
        annotators=annotator_status(rt, dataset),
        config=cfg.model_dump(),
    )


# --------------------------------------------------------------------- Label Studio
def export_label_studio(rt: Runtime, dataset: str, *, limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
    """Label Studio import JSON for the tasks waiting for people (highest
    priority first, the model's label as a prediction) and the labelling config."""
    project = project_of(rt, dataset)
    queue, cfg = _queue(rt, dataset)
    tasks = queue.next_tasks(limit if limit is not None else 1_000_000, annotators_per_task=cfg.annotators_per_task)
    return export_tasks(tasks), label_config("classification", project.labels, modality=project.modality)


class Refusal(BaseModel):
    task_id: str
    annotator: str
    reason: str


class ImportReport(BaseModel):
    annotations: int
    submitted: int
    refused: list[Refusal]
    ready_for_consensus: int


def import_label_studio(rt: Runtime, dataset: str, payload: Any) -> ImportReport:
    """Take people's answers from a Label Studio JSON export (text or parsed).
    Answers for unknown tasks, with unknown labels or by quarantined
    annotators are refused with a reason; the rest land in the queue."""
    project = project_of(rt, dataset)
    queue, cfg = _queue(rt, dataset)
    answers = parse_export(payload)
    refused: list[Refusal] = []
    submitted = 0
    for ann in answers:

        def refuse(reason: str, ann: LSAnnotation = ann) -> None:
            refused.append(Refusal(task_id=ann.task_id, annotator=ann.annotator, reason=reason))

        if ann.dataset and ann.dataset != dataset:
            refuse(f"task belongs to dataset {ann.dataset!r}")
            continue
        task = queue.task_for_sample(ann.sample_id) if ann.sample_id else None
        if task is None and not ann.task_id.startswith("ls-"):
            try:
                task = queue.task(ann.task_id)
            except InputError:
                task = None
        if task is None:
            refuse("no such task in this dataset")
            continue
        unknown = sorted({lb for lb in [ann.label, *(b.label for b in ann.boxes)] if lb and lb not in project.labels})
        if unknown:
            refuse(f"unknown label(s) {', '.join(unknown)}; labels: {', '.join(project.labels)}")
            continue
        try:
            queue.submit(
                task.id, ann.annotator, label=ann.label, boxes=ann.boxes, lead_time_s=ann.lead_time_s, at=ann.created_at
            )
        except InputError as exc:
            refuse(str(exc))
            continue
        submitted += 1
    ready = len(queue.ready_for_consensus(cfg.annotators_per_task))
    return ImportReport(annotations=len(answers), submitted=submitted, refused=refused, ready_for_consensus=ready)


# --------------------------------------------------------------------- people
class ReviewItem(BaseModel):
    task_id: str
    sample_id: str
    uri: str
    auto_label: str | None
    auto_confidence: float | None
    agreement: float | None
    votes: dict[str, int]


def review_list(rt: Runtime, dataset: str) -> list[ReviewItem]:
    """Tasks waiting for an expert, with the answers people gave."""
    project_of(rt, dataset)
    queue, _ = _queue(rt, dataset)
    out = []
    for task in queue.next_tasks(1_000_000, expert=True):
        votes = Counter(a.label or "(none)" for a in queue.answers(task.id) if a.source == "human")
        out.append(
            ReviewItem(
                task_id=task.id,
                sample_id=task.sample_id,
                uri=task.uri,
                auto_label=task.auto_label,
                auto_confidence=task.auto_confidence,
                agreement=task.agreement,
                votes=dict(votes.most_common()),
            )
        )
    return out


def _find_task(queue: AnnotationQueue, ref: str) -> AnnotationTaskRow:
    task = queue.task_for_sample(ref)
    return task if task is not None else queue.task(ref)


def _check_label(project: AnnotationProject, label: str) -> str:
    if label not in project.labels:
        raise InputError(f"unknown label {label!r}; labels: {', '.join(project.labels)}")
    return label


def review_decide(rt: Runtime, dataset: str, ref: str, *, expert: str, label: str | None) -> AnnotationTaskRow:
    """An expert's decision on a task in review (by task or sample id):
    ``label`` accepts it with that label, None rejects it."""
    project = project_of(rt, dataset)
    queue, _ = _queue(rt, dataset)
    task = _find_task(queue, ref)
    if task.status != "expert_review":
        raise InputError(f"task {task.id} is {task.status}, not waiting for expert review")
    queue.submit(task.id, expert, label=None if label is None else _check_label(project, label), source="expert")
    close_expert(queue, queue.task(task.id))
    return queue.task(task.id)


def tasks_for(rt: Runtime, dataset: str, annotator: str, n: int) -> list[AnnotationTaskRow]:
    """Up to ``n`` tasks for ``annotator`` to answer next."""
    project_of(rt, dataset)
    queue, cfg = _queue(rt, dataset)
    if queue.is_quarantined(annotator):
        raise InputError(f"annotator {annotator!r} is quarantined; their answers are not taken")
    return queue.next_tasks(n, annotator=annotator, annotators_per_task=cfg.annotators_per_task)


def submit_label(rt: Runtime, dataset: str, task_id: str, annotator: str, label: str) -> None:
    project = project_of(rt, dataset)
    queue, _ = _queue(rt, dataset)
    queue.submit(task_id, annotator, label=_check_label(project, label))
