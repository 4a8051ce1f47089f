"""The annotation pipeline: every accepted sample of an ingested dataset gets
a model's proposal; confident ones are accepted on the spot (a share of them
also audited by people), the rest are queued for people in active-learning
order. After the batches, the annotator pool (if any) answers, consensus
closes tasks, and the accepted labels are written as one Iceberg snapshot."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from app.errors import ConfigError, DataOpsError, InputError, NotFoundError, PipelineError, RecordRejected
from pipelines.annotation._autolabel import AutoLabeler, ImageClassifier, LabelProposal
from pipelines.annotation._models import TaskSeed
from pipelines.annotation._pool import AnnotatorPool, answer_queue
from pipelines.annotation._queue import AnnotationQueue
from pipelines.annotation._routing import route_auto
from pipelines.annotation._strategies import MixShares, select_batch, split_shares, uncertainty_scores
from pipelines.annotation._writeback import (
    measure_quality,
    run_metrics,
    sample_metadata,
    settle,
    write_labels,
)
from pipelines.runtime import (
    Item,
    PipelineConfig,
    RecordRow,
    Runtime,
    SampleRow,
    SourceRecord,
    Stage,
    StageContext,
    tunable,
)

__all__ = ["AnnotationConfig", "AnnotationPipeline", "DatasetSampleSource", "decode_item", "RETRAIN_EVERY"]

RETRAIN_EVERY = 50
"""New human labels that trigger a retrain of a trainable image model."""

_PAGE_IDS = 500
_REPRIORITISE_MAX = 5000  # queued tasks re-scored after a retrain (bounded: each is an object read)


class AnnotationConfig(PipelineConfig):
    autolabel_threshold: float = tunable(
        0.95, ge=0.5, le=0.999, description="Auto-accept a model label at or above this confidence."
    )
    annotators_per_task: int = tunable(3, ge=1, le=7, description="People who answer each queued task.")
    # 0.6 lets a 2-of-3 (or 3-of-5) majority stand; ties and weaker splits go to an expert.
    review_agreement_below: float = tunable(
        0.6,
        ge=0.0,
        le=1.0,
        description="Majority share below which a task goes to expert review (1.0: every non-unanimous task).",
    )
    audit_rate: float = tunable(0.1, ge=0.0, le=1.0, description="Share of auto-accepted tasks also sent to people.")


def decode_item(modality: str, data: bytes) -> Any:
    """What a labeler takes: an HxW or HxWxC uint8 array for an image, a str
    for text. :class:`RecordRejected` (``undecodable``) when the bytes are not that."""
    if modality == "text":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordRejected("undecodable", f"not UTF-8 text (byte {exc.start})") from None
    if modality == "image":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                return np.asarray(img if img.mode in ("L", "RGB") else img.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise RecordRejected("undecodable", f"not a readable image: {exc}") from None
    raise RecordRejected("modality_mismatch", f"no auto-labeler for {modality}")


def _audited(sample_id: str, rate: float) -> bool:
    """A stable pick of ``rate`` of the samples (the same sample is always in or out)."""
    if rate <= 0.0:
        return False
    draw = int(hashlib.sha256(f"audit\0{sample_id}".encode()).hexdigest()[:12], 16) / float(16**12)
    return draw < rate


class AnnotationPipeline:
    """``labeler`` and ``pool`` are public so a fault can swap them."""

    name = "annotation"
    config_model: type[PipelineConfig] = AnnotationConfig

    def __init__(
        self,
        labeler: AutoLabeler,
        *,
        source_dataset: str,
        modality: str,
        pool: AnnotatorPool | None = None,
        model_path: Path | None = None,
        retrain_every: int = RETRAIN_EVERY,
        shares: MixShares | None = None,
        seed: int = 0,
    ) -> None:
        if modality not in ("image", "text"):
            raise InputError(f"annotation handles image or text samples, not {modality!r}")
        self.labeler = labeler
        self.pool = pool
        self.source_dataset = source_dataset
        self.modality = modality
        self.model_path = model_path
        self.retrain_every = max(1, retrain_every)
        self.shares = shares or MixShares()
        self.seed = seed

    def stages(self) -> list[Stage]:
        return [
            Stage("decode", self._decode),
            Stage("auto-label", self._autolabel, per_record=False),
            Stage("route", self._route, per_record=False),
            Stage("enqueue", self._enqueue, per_record=False),
        ]

    # -- per run -----------------------------------------------------------
    def open(self, ctx: StageContext) -> None:
        if ctx.dataset == self.source_dataset:
            raise InputError(
                f"the annotation dataset needs its own name, not the source's {ctx.dataset!r} "
                f"(e.g. {ctx.dataset}-labels): its labels table is named after it"
            )
        ctx.runtime.ensure_dataset(ctx.dataset, "annotation")
        ctx.state.update(new_tasks=0, auto_accepted=0, confidences=[], closed=[], batch=0)

    def _queue(self, ctx: StageContext) -> AnnotationQueue:
        cfg: AnnotationConfig = ctx.config  # type: ignore[assignment]
        return AnnotationQueue(ctx.runtime.engine, ctx.dataset, annotators_per_task=cfg.annotators_per_task)

    # -- stages ------------------------------------------------------------
    def _decode(self, item: Item, ctx: StageContext) -> None:
        rec = item.record
        missing = rec.metadata.get("load_error")
        if missing:
            raise RecordRejected("missing_object", str(missing))
        if rec.modality != self.modality:
            raise RecordRejected("modality_mismatch", f"{rec.modality} sample; this labeler takes {self.modality}")
        value = decode_item(self.modality, rec.data)
        f = item.fields
        f["sample_id"], f["uri"], f["value"] = rec.metadata["sample_id"], rec.metadata["uri"], value
        if self.modality == "image":
            f["meta"] = {"height": int(value.shape[0]), "width": int(value.shape[1])}
        else:
            f["meta"] = {"chars": len(value), "text": value[:500]}

    def _autolabel(self, items: list[Item], ctx: StageContext) -> None:
        props: list[LabelProposal] = self.labeler.propose([i.fields["value"] for i in items])
        if len(props) != len(items):
            raise PipelineError(f"labeler {self.labeler.model_id} gave {len(props)} proposals for {len(items)} items")
        for item, prop in zip(items, props, strict=True):
            item.fields["proposal"] = prop
        ctx.state["confidences"].extend(float(p.confidence) for p in props)

    def _route(self, items: list[Item], ctx: StageContext) -> None:
        cfg: AnnotationConfig = ctx.config  # type: ignore[assignment]
        queued: list[Item] = []
        for item in items:
            prop: LabelProposal = item.fields["proposal"]
            auto = route_auto(float(prop.confidence), cfg.autolabel_threshold)
            audit = auto and _audited(item.fields["sample_id"], cfg.audit_rate)
            item.fields["auto"], item.fields["audit"] = auto, audit
            # An audit measures the model, so it goes to people first.
            item.fields["priority"], item.fields["strategy"] = (1.0, "audit") if audit else (0.0, "auto")
            if not auto:
                queued.append(item)
        if queued:
            ctx.state["batch"] += 1
            rng = np.random.default_rng([self.seed, ctx.state["batch"], len(queued)])
            for item, (priority, strategy) in zip(queued, self._priorities(queued, rng), strict=True):
                item.fields["priority"], item.fields["strategy"] = priority, strategy

    def _priorities(self, items: list[Item], rng: np.random.Generator) -> list[tuple[float, str]]:
        """Queue order "uncertain > diverse > random": the mixed selection over
        this batch, mapped to priorities in three bands (uncertain 2/3..1,
        diverse 1/3..2/3, random 0..1/3) so later batches interleave by band."""
        values = [i.fields["value"] for i in items]
        n = len(items)
        fitted = bool(getattr(self.labeler, "is_fitted", True))
        probs = np.asarray(self.labeler.predict_proba(values), dtype=np.float64) if fitted else None
        embed = getattr(self.labeler, "embed", None)
        embeddings = np.asarray(embed(values), dtype=np.float64) if callable(embed) else None
        n_unc, n_div, _ = split_shares(n, self.shares)
        if probs is None:
            n_unc, n_div = 0, n_div + n_unc
        if embeddings is None:
            n_div = 0
        if probs is None and embeddings is None:
            order = rng.permutation(n)  # no model signal at all
        else:
            order = select_batch("mixed", n, rng=rng, probs=probs, embeddings=embeddings, shares=self.shares)
        scores = uncertainty_scores(probs) if probs is not None else np.zeros(n)
        out: list[tuple[float, str]] = [(0.0, "random")] * n
        for rank, idx in enumerate(order):
            if rank < n_unc:
                out[idx] = (2 / 3 + float(scores[idx]) / 3, "uncertain")
            elif rank < n_unc + n_div:
                k = rank - n_unc
                out[idx] = (1 / 3 + (1 - k / max(n_div, 1)) / 3, "diverse")
            else:
                k = rank - n_unc - n_div
                out[idx] = ((1 - k / max(n - n_unc - n_div, 1)) / 3, "random")
        return out

    def _enqueue(self, items: list[Item], ctx: StageContext) -> None:
        seeds = []
        for item in items:
            f = item.fields
            prop: LabelProposal = f["proposal"]
            seeds.append(
                TaskSeed(
                    sample_id=f["sample_id"],
                    uri=f["uri"],
                    modality=self.modality,
                    priority=float(f["priority"]),
                    strategy=f["strategy"],
                    auto_label=prop.label,
                    auto_confidence=float(prop.confidence),
                    auto_model=prop.model,
                    auto_accept=bool(f["auto"]),
                    audit=bool(f["audit"]),
                    meta=f["meta"],
                )
            )
        self._queue(ctx).enqueue(seeds)
        for item in items:
            item.accept(item.fields["sample_id"])
        ctx.state["new_tasks"] += len(items)
        ctx.state["auto_accepted"] += sum(1 for i in items if i.fields["auto"])

    def commit_rows(self, items: list[Item], ctx: StageContext, session: Any) -> None:
        return None  # tasks are written by the enqueue stage (idempotent by sample id)

    def after_commit(self, items: list[Item], ctx: StageContext) -> None:
        return None

    # -- after the batches -------------------------------------------------
    def finalize(self, ctx: StageContext) -> int | None:
        cfg: AnnotationConfig = ctx.config  # type: ignore[assignment]
        rt = ctx.runtime
        queue = self._queue(ctx)
        if self.pool is not None and not ctx.state.get("pool_done"):
            answered = answer_queue(
                queue,
                self.pool,
                labels=list(self.labeler.labels),
                metadata=lambda ids: sample_metadata(rt.engine, self.source_dataset, ids),
                annotators_per_task=cfg.annotators_per_task,
            )
            ctx.state["pool_done"], ctx.state["answered"] = True, answered
        ctx.state["closed"].extend(
            settle(queue, annotators_per_task=cfg.annotators_per_task, review_below=cfg.review_agreement_below)
        )
        qualities = measure_quality(queue)
        self._maybe_retrain(ctx, queue)
        snapshot = write_labels(rt, ctx.dataset, run_id=ctx.run_id)
        rt.report_metrics(
            self.name,
            ctx.dataset,
            run_metrics(queue.stats(), ctx.state, qualities),
            run_id=ctx.run_id,
        )
        return snapshot

    # -- model retraining ---------------------------------------------------
    def _maybe_retrain(self, ctx: StageContext, queue: AnnotationQueue) -> None:
        """Retrain a trainable image model on every accepted human label once
        ``retrain_every`` new ones exist; save it where the next run loads it."""
        model = self.labeler
        if not isinstance(model, ImageClassifier) or self.model_path is None or ctx.state.get("retrained"):
            return
        done = [
            t
            for t in queue.tasks(status="accepted")
            if (t.provenance or {}).get("source") in ("human", "expert") and t.final_label in model.labels
        ]
        if len(done) - model.trained_on < self.retrain_every or len({t.final_label for t in done}) < 2:
            return
        rt = ctx.runtime
        images: list[Any] = []
        labels: list[str] = []
        for task in done:
            try:
                images.append(decode_item("image", rt.objects.get(task.uri)))
            except (RecordRejected, DataOpsError):
                continue  # a sample whose bytes are gone cannot teach the model
            labels.append(str(task.final_label))
        before = model.trained_on
        model.fit(images, labels)
        model.save(self.model_path)
        ctx.state["retrained"] = True
        rescored = self._reprioritise(ctx, queue)
        rt.events.emit(
            self.name,
            "model_retrained",
            run_id=ctx.run_id,
            dataset=ctx.dataset,
            message=f"{model.model_id} retrained on {len(labels)} human labels (was {before}); {rescored} queued tasks re-scored",
            model=model.model_id,
            labels=len(labels),
            previous=before,
            rescored=rescored,
            path=str(self.model_path),
        )

    def _reprioritise(self, ctx: StageContext, queue: AnnotationQueue) -> int:
        """Re-score untouched queued tasks by the retrained model's uncertainty."""
        tasks = [t for t in queue.tasks(status="queued") if t.modality == "image"][:_REPRIORITISE_MAX]
        ids: list[str] = []
        values: list[Any] = []
        for task in tasks:
            try:
                values.append(decode_item("image", ctx.runtime.objects.get(task.uri)))
            except (RecordRejected, DataOpsError):
                continue
            ids.append(task.sample_id)
        if not ids:
            return 0
        scores = uncertainty_scores(np.asarray(self.labeler.predict_proba(values), dtype=np.float64))
        return queue.set_priorities({sid: 2 / 3 + float(s) / 3 for sid, s in zip(ids, scores, strict=True)}, strategy="uncertain")


class DatasetSampleSource:
    """The accepted (committed) samples of an ingested dataset, in sample id
    order: one record per sample, its bytes read from the object store
    (a missing object becomes a record the pipeline quarantines).

    ``runtime`` may be a callable, for a job whose runtime is known only when
    a run starts. With ``skip_done_in`` samples the annotation ledger of that
    dataset already has are not read again."""

    def __init__(
        self,
        dataset: str,
        runtime: Runtime | Callable[[], Runtime | None],
        *,
        skip_done_in: str | None = None,
    ) -> None:
        self.dataset = dataset
        self.uri = f"dataset://{dataset}"
        self._runtime = runtime
        self._skip_in = skip_done_in
        self._after = ""
        self._exhausted = False

    def _rt(self) -> Runtime | None:
        return self._runtime if isinstance(self._runtime, Runtime) else self._runtime()

    def _need_rt(self) -> Runtime:
        rt = self._rt()
        if rt is None:
            raise ConfigError(f"source {self.uri} has no runtime yet: it is read from inside a run")
        return rt

    def _done(self, rt: Runtime, sources: list[str]) -> set[str]:
        if self._skip_in is None or not sources:
            return set()
        with Session(rt.engine) as s:
            return set(
                s.exec(
                    select(RecordRow.source).where(
                        RecordRow.pipeline == AnnotationPipeline.name,
                        RecordRow.dataset == self._skip_in,
                        col(RecordRow.source).in_(sources),
                    )
                ).all()
            )

    def read(self, n: int) -> list[SourceRecord]:
        rt = self._need_rt()
        out: list[SourceRecord] = []
        while len(out) < n and not self._exhausted:
            with Session(rt.engine) as s:
                rows = s.exec(
                    select(SampleRow.sample_id, SampleRow.uri, SampleRow.modality)
                    .where(
                        SampleRow.dataset == self.dataset,
                        col(SampleRow.committed).is_(True),
                        SampleRow.sample_id > self._after,
                    )
                    .order_by(col(SampleRow.sample_id))
                    .limit(max(n, _PAGE_IDS))
                ).all()
            if not rows:
                self._exhausted = True
                break
            done = self._done(rt, [f"{self.dataset}/{sid}" for sid, _, _ in rows])
            for sid, uri, modality in rows:
                if len(out) >= n:
                    break
                self._after = sid
                source = f"{self.dataset}/{sid}"
                if source in done:
                    continue
                meta: dict[str, Any] = {"sample_id": sid, "uri": uri}
                try:
                    data = rt.objects.get(uri)
                except DataOpsError as exc:
                    data, meta["load_error"] = b"", str(exc)
                out.append(SourceRecord(source=source, data=data, metadata=meta, modality=modality))  # type: ignore[arg-type]
        return out

    def ack(self, records: Sequence[SourceRecord]) -> None:
        return None

    def close(self) -> None:
        return None

    def probe(self) -> str | None:
        rt = self._rt()
        if rt is None:
            return None  # not bound to a runtime yet: nothing to check against
        try:
            rt.dataset(self.dataset)
        except NotFoundError as exc:
            return str(exc)
        return None
