"""Enrichment as a function and as a supervised job: what the CLI, the agents'
tools and the tests call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.errors import ConfigError, InputError, NotFoundError
from pipelines.enrichment._config import PIPELINE, EnrichmentConfig, check_version_name, enrichment_table
from pipelines.enrichment._models import EnrichmentVersionRow
from pipelines.enrichment._models_registry import ModelRegistry
from pipelines.enrichment._pipeline import EnrichmentPipeline
from pipelines.enrichment._result import EnrichmentResult, report_run, summarize
from pipelines.enrichment._source import Binding, Plan, RawSnapshotSource, source_uri
from pipelines.runtime import Job, RunSummary, Runtime
from pipelines.runtime._spec import ProgressFn

__all__ = [
    "enrich",
    "reenrich",
    "enrichment_job",
    "resolve_plan",
    "EnrichmentJob",
    "reenrich_estimate",
    "versions",
    "latest_version",
    "version_row",
]


def versions(rt: Runtime, dataset: str) -> list[EnrichmentVersionRow]:
    """The dataset's enrichment versions, oldest first."""
    with Session(rt.engine) as s:
        return list(
            s.exec(
                select(EnrichmentVersionRow)
                .where(EnrichmentVersionRow.dataset == dataset)
                .order_by(EnrichmentVersionRow.seq)  # type: ignore[arg-type]
            )
        )


def _raw_snapshot(rt: Runtime, dataset: str, snapshot_id: int | None) -> int | None:
    rt.dataset(dataset)
    if dataset not in rt.offline.tables():
        raise NotFoundError(f"dataset {dataset!r} has no ingested samples to enrich (run `dataops ingest` first)")
    if snapshot_id is None:
        return rt.offline.current_snapshot_id(dataset)
    if snapshot_id not in {s.snapshot_id for s in rt.offline.snapshots(dataset)}:
        raise NotFoundError(f"dataset {dataset!r} has no raw snapshot {snapshot_id}")
    return snapshot_id


def resolve_plan(
    rt: Runtime, dataset: str, version: str | None = None, snapshot_id: int | None = None, *, new: bool = False
) -> Plan:
    """Which version this run writes and with which models.

    ``version`` given: that version (created if new; an existing one must
    have been made by the models the config names now). Not given: the
    newest version made by the configured models (so a rerun only enriches
    what is new), or a new ``v<n>`` when the models changed; ``new`` always
    makes a new version (re-enrichment)."""
    raw = _raw_snapshot(rt, dataset, snapshot_id)
    _, cfg = rt.configs.current(PIPELINE, dataset, EnrichmentConfig)
    registry = ModelRegistry(rt.settings)
    emb = registry.get("embedding", cfg.embedding_model_version)
    lab = registry.get("labeler", cfg.label_model_version)
    known = versions(rt, dataset)
    by_name = {v.version: v for v in known}

    def same_models(v: EnrichmentVersionRow) -> bool:
        return v.embedding_model_version == emb.version and v.label_model_version == lab.version

    if version is not None:
        check_version_name(version)
        row = by_name.get(version)
        if row is not None and new:
            raise InputError(f"enrichment version {version!r} of {dataset!r} exists; re-enrich as a new version")
        if row is not None and not same_models(row):
            raise ConfigError(
                f"enrichment version {version!r} of {dataset!r} was made with embedding model "
                f"{row.embedding_model_version} and labeler {row.label_model_version}; the config now names "
                f"{emb.version} and {lab.version}: choose a new version"
            )
        name = version
    else:
        reusable = [v for v in known if same_models(v)]
        name = reusable[-1].version if reusable and not new else _next_name(by_name)
    if name not in by_name:
        seq = max((v.seq for v in known), default=0) + 1
        row = EnrichmentVersionRow(
            dataset=dataset,
            version=name,
            seq=seq,
            embedding_model_version=emb.version,
            embedding_model=emb.name,
            label_model_version=lab.version,
            label_model=lab.name,
            raw_snapshot_id=raw,
        )
        try:
            with Session(rt.engine) as s:
                s.add(row)
                s.commit()
        except IntegrityError:
            # Another process made this version first: fine if by the same models.
            with Session(rt.engine) as s:
                other = s.get(EnrichmentVersionRow, (dataset, name))
            if other is None or not same_models(other):
                raise ConfigError(f"enrichment version {name!r} of {dataset!r} was just made by other models") from None
    return Plan(dataset=dataset, version=name, raw_snapshot_id=raw, embedding=emb, labeler=lab)


def _next_name(taken: Mapping[str, object]) -> str:
    n = len(taken) + 1
    while f"v{n}" in taken:
        n += 1
    return f"v{n}"


@dataclass
class EnrichmentJob(Job):
    """A :class:`Job` that reports the enrichment metrics after every run and
    keeps the last run's :class:`EnrichmentResult`."""

    binding: Binding = field(default_factory=Binding)
    last_result: EnrichmentResult | None = None

    def run(self, rt: Runtime, *, progress: ProgressFn | None = None) -> RunSummary:
        summary = super().run(rt, progress=progress)
        plan = self.binding.plan
        if plan is not None:
            self.last_result = summarize(rt, plan, summary)
            report_run(rt, self.last_result)
        return summary


def enrichment_job(
    dataset: str,
    *,
    version: str | None = None,
    snapshot_id: int | None = None,
    new_version: bool = False,
    labels: Mapping[str, Sequence[str]] | None = None,
    descriptions: Mapping[str, str] | None = None,
) -> EnrichmentJob:
    """A re-runnable enrichment job over the dataset's raw table (its current
    snapshot at each run, unless ``snapshot_id`` pins one)."""
    if version is not None:
        check_version_name(version)
    binding = Binding()

    def make_spec(rt: Runtime) -> EnrichmentPipeline:
        plan = resolve_plan(rt, dataset, version, snapshot_id, new=new_version)
        binding.bind(rt, plan)
        return EnrichmentPipeline(rt, plan, labels=labels, descriptions=descriptions)

    return EnrichmentJob(
        pipeline=PIPELINE,
        dataset=dataset,
        source_uri=source_uri(dataset, version),
        open_source=lambda: RawSnapshotSource(binding, dataset),
        make_spec=make_spec,
        binding=binding,
    )


def enrich(
    rt: Runtime,
    dataset: str,
    *,
    version: str | None = None,
    snapshot_id: int | None = None,
    progress: ProgressFn | None = None,
    labels: Mapping[str, Sequence[str]] | None = None,
    descriptions: Mapping[str, str] | None = None,
    new_version: bool = False,
) -> EnrichmentResult:
    """Enrich ``dataset``'s raw snapshot (default: its current one) into
    ``version``; resumes an interrupted run and skips what the version holds."""
    job = enrichment_job(
        dataset, version=version, snapshot_id=snapshot_id, new_version=new_version, labels=labels, descriptions=descriptions
    )
    job.run(rt, progress=progress)
    assert job.last_result is not None
    return job.last_result


def reenrich(
    rt: Runtime,
    dataset: str,
    *,
    version: str | None = None,
    snapshot_id: int | None = None,
    progress: ProgressFn | None = None,
) -> EnrichmentResult:
    """Enrich an existing raw snapshot again as a new version (default
    ``v<n+1>``) with the models the config names now, without re-ingesting:
    the raw table is only read, and every older version stays readable."""
    return enrich(rt, dataset, version=version, snapshot_id=snapshot_id, progress=progress, new_version=True)


def reenrich_estimate(rt: Runtime, dataset: str, snapshot_id: int | None = None) -> tuple[int, bool]:
    """How many samples a re-enrichment would process, and whether that is
    more than the config's ``reenrich_approval_above`` (so a human must approve)."""
    raw = _raw_snapshot(rt, dataset, snapshot_id)
    n = 0 if raw is None else rt.offline.scan(dataset, raw, columns=["sample_id"]).num_rows
    _, cfg = rt.configs.current(PIPELINE, dataset, EnrichmentConfig)
    return n, n > cfg.reenrich_approval_above


def latest_version(rt: Runtime, dataset: str) -> EnrichmentVersionRow:
    """The newest version that has published something."""
    rt.dataset(dataset)
    published = [v for v in versions(rt, dataset) if v.snapshot_id is not None]
    if not published or enrichment_table(dataset) not in rt.offline.tables():
        raise NotFoundError(f"dataset {dataset!r} has no enrichment yet (run `dataops enrich {dataset}`)")
    return published[-1]


def version_row(rt: Runtime, dataset: str, version: str | None) -> EnrichmentVersionRow:
    if version is None:
        return latest_version(rt, dataset)
    rt.dataset(dataset)
    with Session(rt.engine) as s:
        row = s.get(EnrichmentVersionRow, (dataset, version))
    if row is None:
        names = ", ".join(v.version for v in versions(rt, dataset)) or "none"
        raise NotFoundError(f"dataset {dataset!r} has no enrichment version {version!r} (versions: {names})")
    return row
