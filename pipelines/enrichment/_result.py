"""What an enrichment run reports: counts per stage (what each removed), as
a result object for people and JSON, and as metrics for the monitor."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel
from sqlmodel import Session, select

from pipelines.enrichment._config import PIPELINE
from pipelines.enrichment._models import STAGES, EnrichmentSampleRow, EnrichmentVersionRow
from pipelines.enrichment._models_registry import MODALITIES
from pipelines.enrichment._source import Plan
from pipelines.runtime import MetricValue, RunSummary, Runtime

__all__ = ["EnrichmentResult", "StageCount", "summarize", "report_run", "metric_values"]

_EMBEDDING_FAILURES = ("embedding_failed", "embedding_invalid")
_REMOVED_AS = {
    "quality": "blocking quality issue (or unreadable)",
    "dedup": "duplicate (or signature embedding failed)",
    "autolabel": "auto-labeler failed",
    "embed": "embedding failed",
    "store": "",
}


class StageCount(BaseModel):
    stage: str
    entered: int
    removed: int
    removed_as: str


class EnrichmentResult(BaseModel):
    run_id: str
    dataset: str
    version: str
    status: str
    raw_snapshot_id: int | None
    snapshot_id: int | None
    embedding_model: str
    label_model: str
    processed: int
    skipped: int
    flagged: dict[str, int]
    blocked: int
    duplicates: int
    duplicate_kinds: dict[str, int]
    auto_proposed: int
    auto_labeled: int
    embedded: int
    quarantined: int
    quarantine_reasons: dict[str, int]
    model_errors: dict[str, int]
    stages: list[StageCount]
    seconds: float
    error: str | None = None
    # For the metrics: per-modality counts and the models this run used.
    modalities: dict[str, int] = {}
    confidences: list[float] = []
    models_used: list[str] = []

    def to_json(self) -> dict[str, object]:
        """The machine output of ``dataops enrich --json``."""
        return self.model_dump(exclude={"confidences", "models_used"})


def summarize(rt: Runtime, plan: Plan, summary: RunSummary) -> EnrichmentResult:
    with Session(rt.engine) as s:
        rows = list(s.exec(select(EnrichmentSampleRow).where(EnrichmentSampleRow.run_id == summary.run_id)))
        version = s.get(EnrichmentVersionRow, (plan.dataset, plan.version))
    exits = Counter(r.exit_stage for r in rows)
    stages, entered = [], len(rows)
    for stage in STAGES:
        removed = exits.get(stage, 0) if stage != "store" else 0
        stages.append(StageCount(stage=stage, entered=entered, removed=removed, removed_as=_REMOVED_AS[stage]))
        entered -= removed
    proposed = [r for r in rows if r.auto_label is not None]
    modalities = Counter(r.modality for r in rows)
    used = {plan.embedding.signature_model(mod) for mod in MODALITIES if modalities.get(mod)}
    used |= {m for kind, m in plan.embedding.models if modalities.get(kind)}
    snapshot = None
    if version is not None and version.last_run_id == summary.run_id:
        snapshot = version.snapshot_id
    return EnrichmentResult(
        run_id=summary.run_id,
        dataset=plan.dataset,
        version=plan.version,
        status=summary.status,
        raw_snapshot_id=plan.raw_snapshot_id,
        snapshot_id=snapshot,
        embedding_model=plan.embedding.name,
        label_model=plan.labeler.name,
        processed=len(rows),
        skipped=summary.skipped,
        flagged=dict(sorted(Counter(i for r in rows for i in r.issues).items())),
        blocked=sum(1 for r in rows if r.blocked),
        duplicates=sum(1 for r in rows if r.status == "duplicate"),
        duplicate_kinds=dict(Counter(r.duplicate_kind or "exact" for r in rows if r.status == "duplicate")),
        auto_proposed=len(proposed),
        auto_labeled=sum(1 for r in proposed if r.auto_accepted),
        embedded=sum(1 for r in rows if r.embedded),
        quarantined=sum(1 for r in rows if r.status == "quarantined"),
        quarantine_reasons=dict(Counter(r.reason or "unknown" for r in rows if r.status == "quarantined")),
        model_errors=dict(Counter(r.error_model for r in rows if r.error_model)),
        stages=stages,
        seconds=summary.seconds,
        error=summary.error,
        modalities=dict(modalities),
        confidences=[float(r.auto_confidence) for r in proposed if r.auto_confidence is not None],
        models_used=sorted(used),
    )


def metric_values(result: EnrichmentResult, issues_by_modality: dict[str, tuple[str, ...]]) -> list[MetricValue]:
    n = result.processed
    past_quality = result.stages[1].entered
    failures = sum(result.quarantine_reasons.get(r, 0) for r in _EMBEDDING_FAILURES)
    values = [
        MetricValue("enrichment_processed", n),
        MetricValue("enrichment_throughput_per_s", n / result.seconds if result.seconds > 0 else 0.0),
        MetricValue("enrichment_embedding_failures", failures),
        MetricValue("enrichment_embedding_failure_rate", failures / past_quality if past_quality else 0.0),
        MetricValue("enrichment_dedup_rate", result.duplicates / past_quality if past_quality else 0.0),
    ]
    for modality, count in sorted(result.modalities.items()):
        for issue in issues_by_modality.get(modality, ()):
            rate = result.flagged.get(issue, 0) / count if count else 0.0
            values.append(MetricValue("enrichment_issue_rate", rate, {"issue": issue}))
    for model in sorted(set(result.models_used) | set(result.model_errors)):
        values.append(MetricValue("enrichment_model_errors", result.model_errors.get(model, 0), {"model": model}))
    if result.auto_proposed:
        values.append(MetricValue("enrichment_autolabel_accept_rate", result.auto_labeled / result.auto_proposed))
        mean = sum(result.confidences) / len(result.confidences) if result.confidences else 0.0
        values.append(MetricValue("enrichment_autolabel_confidence_mean", mean))
    return values


def report_run(rt: Runtime, result: EnrichmentResult) -> None:
    """Publish the run's figures (a run that read nothing new reports nothing)."""
    if result.processed == 0:
        return
    from pipelines.enrichment._quality import AUDIO_ISSUES, IMAGE_ISSUES, TEXT_ISSUES

    issues = {"image": tuple(IMAGE_ISSUES), "audio": tuple(AUDIO_ISSUES), "text": tuple(TEXT_ISSUES)}
    rt.report_metrics(PIPELINE, result.dataset, metric_values(result, issues), run_id=result.run_id)
