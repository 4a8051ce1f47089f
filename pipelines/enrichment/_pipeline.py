"""The enrichment pipeline on the shared runtime: a raw snapshot in, the
enrichment store out (quality -> dedup -> auto-label -> embed -> store).

Per batch, results are staged in the metadata DB in the same transaction as
the run's ledger, so a crashed run resumes where it stopped. When the run
ends, ``finalize`` publishes the run's rows as one snapshot of
``<dataset>__enrichment``, appends its vectors to the Zarr arrays and the
Chroma index (both idempotent), and drops the staged vectors.

``embedders`` and ``labelers`` are public so that a fault (through
``Job.spec_wrappers``) can swap a model for a broken one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, update
from sqlmodel import Session, col, select

from pipelines.enrichment._config import BLOCKING_ISSUES, PIPELINE, EnrichmentConfig
from pipelines.enrichment._dedup import DedupIndex
from pipelines.enrichment._embed import EmbedderSet
from pipelines.enrichment._labels import LabelerSet
from pipelines.enrichment._models import EnrichmentSampleRow, EnrichmentVectorRow, EnrichmentVersionRow
from pipelines.enrichment._source import Plan
from pipelines.enrichment._stages import RunState, autolabel_stage, dedup_stage, embed_stage, quality_stage
from pipelines.enrichment._store import publish_rows
from pipelines.enrichment._vectors import VectorStore
from pipelines.runtime import DUPLICATE, QUARANTINED, Item, PipelineConfig, Runtime, Stage, StageContext, utcnow

__all__ = ["EnrichmentPipeline"]


class EnrichmentPipeline:
    name = PIPELINE
    config_model: type[PipelineConfig] = EnrichmentConfig

    def __init__(
        self,
        rt: Runtime,
        plan: Plan,
        *,
        labels: Mapping[str, Sequence[str]] | None = None,
        descriptions: Mapping[str, str] | None = None,
        blocking_issues: frozenset[str] = BLOCKING_ISSUES,
        thresholds: Any = None,
    ) -> None:
        self.rt = rt
        self.plan = plan
        self.blocking_issues = frozenset(blocking_issues)
        self.thresholds = thresholds
        self.vectors = VectorStore(rt.settings)
        self.embedders = EmbedderSet(rt.settings.clip_model_path)
        self.labelers = LabelerSet(rt, plan, labels=labels, descriptions=descriptions)
        self.snapshot_id: int | None = None

    def stages(self) -> list[Stage]:
        return [
            Stage("quality", self._with_state(quality_stage), per_record=False),
            Stage("dedup", self._with_state(dedup_stage), per_record=False),
            Stage("autolabel", self._with_state(autolabel_stage), per_record=False),
            Stage("embed", self._with_state(embed_stage), per_record=False),
        ]

    @staticmethod
    def _with_state(fn: Any) -> Any:
        def run(items: list[Item], ctx: StageContext) -> None:
            fn(items, ctx, ctx.state["enrichment"])

        return run

    # -- per run -----------------------------------------------------------
    def open(self, ctx: StageContext) -> None:
        ctx.state["enrichment"] = RunState(
            plan=self.plan,
            dedup=DedupIndex(self.rt, self.plan.dataset).load(self.vectors, self.plan.embedding),
            labelers=self.labelers,
            embedders=self.embedders,
            blocking=self.blocking_issues,
            thresholds=self.thresholds,
        )

    # -- commit ------------------------------------------------------------
    def commit_rows(self, items: list[Item], ctx: StageContext, session: Session) -> None:
        plan, now = self.plan, utcnow()
        samples, vectors = [], []
        for it in items:
            f, m = it.fields, it.record.metadata
            sample_id = f.get("sample_id") or m["sample_id"]
            auto = f.get("auto")
            status = {DUPLICATE: "duplicate", QUARANTINED: "quarantined"}.get(it.outcome or "", "enriched")
            kinds = sorted(k for k in f.get("vectors", {}) if not k.endswith("_signature"))
            samples.append(
                {
                    "dataset": plan.dataset,
                    "version": plan.version,
                    "sample_id": sample_id,
                    "run_id": ctx.run_id,
                    "modality": f.get("modality") or m.get("modality") or "unknown",
                    "status": status,
                    "exit_stage": f.get("exit_stage", "quality"),
                    "blocked": bool(f.get("blocked")),
                    "scores": f.get("scores", {}),
                    "issues": f.get("issues", []),
                    "duplicate_of": it.duplicate_of,
                    "duplicate_kind": it.duplicate_kind,
                    "similarity": f.get("similarity"),
                    "auto_label": auto[0] if auto else None,
                    "auto_confidence": auto[1] if auto else None,
                    "auto_model": auto[2] if auto else None,
                    "auto_accepted": auto[3] if auto else None,
                    "embedded": kinds,
                    "embedding_model": plan.embedding.name if kinds else None,
                    "reason": it.reason,
                    "error_model": f.get("error_model"),
                    "detail": it.detail,
                    "raw_snapshot_id": plan.raw_snapshot_id,
                    "meta": {"uri": m.get("uri"), "source": m.get("raw_source")},
                    "committed": False,
                    "created_at": now,
                }
            )
            if it.outcome == QUARANTINED:
                continue
            for kind, (model, vec) in f.get("vectors", {}).items():
                v = np.asarray(vec, dtype=np.float32)
                vectors.append(
                    {
                        "dataset": plan.dataset,
                        "version": plan.version,
                        "sample_id": sample_id,
                        "kind": kind,
                        "run_id": ctx.run_id,
                        "model": model,
                        "dim": int(v.shape[0]),
                        "data": v.tobytes(),
                    }
                )
        if samples:
            session.execute(insert(EnrichmentSampleRow), samples)
        if vectors:
            session.execute(insert(EnrichmentVectorRow), vectors)

    def after_commit(self, items: list[Item], ctx: StageContext) -> None:
        return None

    def finalize(self, ctx: StageContext) -> int | None:
        """Publish the run. Returns None: the snapshot belongs to the
        enrichment table, not to the dataset's raw table that the runner's
        checks read (it is kept in ``snapshot_id`` and the version row)."""
        rt, plan = self.rt, self.plan
        with Session(rt.engine) as s:
            rows = list(
                s.exec(
                    select(EnrichmentSampleRow).where(
                        EnrichmentSampleRow.run_id == ctx.run_id,
                        EnrichmentSampleRow.status != "quarantined",
                    )
                )
            )
            staged = list(s.exec(select(EnrichmentVectorRow).where(EnrichmentVectorRow.run_id == ctx.run_id)))
        snapshot = publish_rows(rt, plan.dataset, rows, run_id=ctx.run_id)
        modality = {r.sample_id: r.modality for r in rows}
        # Grouped by version too: a run resumed after the config changed its
        # models may hold rows of two versions.
        by_kind: dict[tuple[str, str, str], list[EnrichmentVectorRow]] = defaultdict(list)
        for v in staged:
            by_kind[(v.version, v.kind, v.model)].append(v)
        for (version, kind, model), group in sorted(by_kind.items()):
            ids = [v.sample_id for v in group]
            matrix = np.stack([np.frombuffer(v.data, dtype=np.float32) for v in group])
            self.vectors.append(plan.dataset, version, kind, model, ids, matrix)
            if not kind.endswith("_signature"):
                metas = [{"modality": modality.get(i, ""), "kind": kind} for i in ids]
                self.vectors.index(plan.dataset, version, kind, ids, matrix, metas)
        with Session(rt.engine) as s:
            s.execute(
                update(EnrichmentSampleRow)
                .where(col(EnrichmentSampleRow.run_id) == ctx.run_id)
                .values(committed=True)
            )
            s.execute(delete(EnrichmentVectorRow).where(col(EnrichmentVectorRow.run_id) == ctx.run_id))
            row = s.get(EnrichmentVersionRow, (plan.dataset, plan.version))
            if row is not None:
                if snapshot is not None:
                    row.snapshot_id = snapshot
                row.raw_snapshot_id = plan.raw_snapshot_id
                row.last_run_id = ctx.run_id
                row.updated_at = utcnow()
                s.add(row)
            s.commit()
        self.snapshot_id = snapshot
        return None
