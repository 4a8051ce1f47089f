"""The enrichment stages, cheapest first. Each stage gets only the records
the ones before it left pending, so every stage shrinks what the next (more
expensive) one sees:

1. quality: score every record; one with a blocking issue is stored with its
   scores and flags and goes no further.
2. dedup: exact bytes, then pHash, then signature-embedding cosine; a
   duplicate is stored with ``duplicate_of`` and goes no further.
3. autolabel: records without a label get a proposal; accepted at or above
   ``autolabel_threshold``, else left for annotation.
4. embed: the version's embedding per kind (the record's own modality, plus
   its caption), batched; a signature from stage 2 made by the same model is
   reused, not recomputed.

A model that fails on a record (or returns non-finite numbers) sends that
record to quarantine with the model's name; the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import DataOpsError, RecordRejected
from pipelines.enrichment._decode import caption_of, decode_image_array, decode_utf8, decode_wav
from pipelines.enrichment._dedup import DedupIndex, link_of, sample_key
from pipelines.enrichment._embed import EmbedderSet
from pipelines.enrichment._labels import LabelerSet, label_of
from pipelines.enrichment._source import Plan
from pipelines.runtime import Item, StageContext

__all__ = ["RunState", "quality_stage", "dedup_stage", "autolabel_stage", "embed_stage", "MODEL_ERRORS"]

# What a model may raise on one bad input: torch and numpy raise the first
# four, our own loaders and labelers the last.
MODEL_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, ValueError, TypeError, IndexError, OSError, DataOpsError)


_MASK64 = (1 << 64) - 1


@dataclass
class RunState:
    plan: Plan
    dedup: DedupIndex
    labelers: LabelerSet
    embedders: EmbedderSet
    blocking: frozenset[str]
    thresholds: Any = None


def _decode(modality: str, data: bytes) -> Any:
    if modality == "image":
        return decode_image_array(data)
    if modality == "audio":
        return decode_wav(data)
    if modality == "text":
        return decode_utf8(data)
    raise RecordRejected("unsupported_modality", f"no enrichment for modality {modality!r}")


def _scorer(modality: str) -> Callable[..., list[Any]]:
    from pipelines.enrichment._quality import score_audio, score_images, score_texts

    scorers: dict[str, Callable[..., list[Any]]] = {"image": score_images, "audio": score_audio, "text": score_texts}
    return scorers[modality]


# -- 1. quality ----------------------------------------------------------------
def quality_stage(items: list[Item], ctx: StageContext, st: RunState) -> None:
    groups: dict[str, list[Item]] = {}
    for it in items:
        m, f = it.record.metadata, it.fields
        f.update(sample_id=m["sample_id"], modality=m["modality"], meta=m["meta"], exit_stage="quality")
        f["key"] = sample_key(st.plan.dataset, m["sample_id"])
        f["phash"] = None if m.get("phash") is None else int(m["phash"]) & _MASK64  # stored signed
        if m.get("_error"):
            it.quarantine(*m["_error"])
            continue
        try:
            f["decoded"] = _decode(m["modality"], it.record.data)
        except RecordRejected as rej:
            it.quarantine(rej.reason, rej.detail)
            continue
        groups.setdefault(m["modality"], []).append(it)
    for modality, group in groups.items():
        reports = _scorer(modality)([i.fields["decoded"] for i in group], st.thresholds)
        for it, rep in zip(group, reports, strict=True):
            it.fields["scores"] = {k: round(float(v), 6) for k, v in rep.scores.items()}
            it.fields["issues"] = list(rep.issues)
            if st.blocking.intersection(rep.issues):
                it.fields["blocked"] = True
                it.accept(it.fields["sample_id"])


# -- 2. dedup ------------------------------------------------------------------
def _duplicate(it: Item, st: RunState, key: str, kind: str, similarity: float) -> None:
    it.fields["similarity"] = round(similarity, 6)
    it.mark_duplicate(link_of(st.plan.dataset, key), kind)


def _primary_input(it: Item) -> Any:
    if it.fields["modality"] == "image":
        return (it.fields["decoded"], it.fields["phash"])
    return it.fields["decoded"]


def dedup_stage(items: list[Item], ctx: StageContext, st: RunState) -> None:
    cfg: Any = ctx.config
    holders = st.dedup.exact([i.sha256 for i in items])
    survivors: dict[str, list[Item]] = {}
    for it in items:
        it.fields["exit_stage"] = "dedup"
        own = it.fields["key"]
        original = st.dedup.original_by_bytes(own, holders.get(it.sha256, []))
        if original is not None:
            _duplicate(it, st, original, "exact", 1.0)
            continue
        if it.fields["phash"] is not None:
            near = st.dedup.original_by_phash(own, it.fields["phash"], cfg.phash_max_distance)
            if near is not None:
                _duplicate(it, st, near[0], "phash", 1.0 - near[1] / 64.0)
                continue
        survivors.setdefault(it.fields["modality"], []).append(it)
    for modality, group in survivors.items():
        model = st.plan.embedding.signature_model(modality)
        vectors = embed_safely(st, model, [_primary_input(i) for i in group], group)
        ok = [(it, v) for it, v in zip(group, vectors, strict=True) if v is not None]
        if not ok:
            continue
        for it, v in ok:
            it.fields["signature"] = (model, v)
        matches = st.dedup.match_batch(modality, [it.fields["key"] for it, _ in ok], np.stack([v for _, v in ok]), cfg.dedup_cosine)
        for (it, _), match in zip(ok, matches, strict=True):
            if match is not None:
                _duplicate(it, st, match[0], "embedding", match[1])


# -- 3. auto-label -------------------------------------------------------------
def autolabel_stage(items: list[Item], ctx: StageContext, st: RunState) -> None:
    cfg: Any = ctx.config
    groups: dict[str, list[Item]] = {}
    for it in items:
        it.fields["exit_stage"] = "autolabel"
        if label_of(it.fields["meta"]) is None:
            groups.setdefault(it.fields["modality"], []).append(it)
    for modality, group in groups.items():
        model_name = f"labeler-v{st.plan.labeler.version}"
        try:
            labeler = st.labelers.get(modality)
        except MODEL_ERRORS as exc:
            for it in group:
                _model_failed(it, "autolabel_failed", model_name, exc)
            continue
        if labeler is None:
            continue
        inputs = [it.fields["decoded"] for it in group]
        for it, proposal in zip(group, _propose_safely(labeler, inputs, group), strict=True):
            if proposal is not None:
                accepted = proposal.confidence >= cfg.autolabel_threshold
                it.fields["auto"] = (proposal.label, float(proposal.confidence), proposal.model, accepted)


def _propose_safely(labeler: Any, inputs: Sequence[Any], items: Sequence[Item]) -> list[Any]:
    try:
        whole: list[Any] | None = list(labeler.propose(inputs))
    except MODEL_ERRORS:
        whole = None  # find the records it fails on, one at a time
    if whole is not None:
        return whole
    out: list[Any] = []
    for x, it in zip(inputs, items, strict=True):
        try:
            out.append(labeler.propose([x])[0])
        except MODEL_ERRORS as exc:
            _model_failed(it, "autolabel_failed", str(getattr(labeler, "model_id", "labeler")), exc)
            out.append(None)
    return out


# -- 4. embed ------------------------------------------------------------------
def embed_stage(items: list[Item], ctx: StageContext, st: RunState) -> None:
    requests: dict[str, list[tuple[Item, str, Any]]] = {}
    for it in items:
        f = it.fields
        f["exit_stage"], f["vectors"] = "embed", {}
        kinds = [(f["modality"], _primary_input(it))]
        caption = caption_of(f["meta"]) if f["modality"] != "text" else None
        if caption is not None:
            kinds.append(("caption", caption))
        for kind, value in kinds:
            model = st.plan.embedding.model_for(kind)
            if model is None:
                continue
            signature = f.get("signature")
            if kind == f["modality"] and signature is not None and signature[0] == model:
                f["vectors"][kind] = signature
            else:
                requests.setdefault(model, []).append((it, kind, value))
    for model, reqs in requests.items():
        live = [r for r in reqs if r[0].pending]
        vectors = embed_safely(st, model, [r[2] for r in live], [r[0] for r in live])
        for (it, kind, _), v in zip(live, vectors, strict=True):
            if v is not None and it.pending:
                it.fields["vectors"][kind] = (model, v)
    for it in items:
        if not it.pending:
            continue
        f = it.fields
        signature = f.get("signature")
        own = f["vectors"].get(f["modality"])
        if signature is not None and (own is None or own[0] != signature[0]):
            f["vectors"][f"{f['modality']}_signature"] = signature  # later runs dedup against it
        f["exit_stage"] = "store"
        it.accept(f["sample_id"])


def embed_safely(st: RunState, model: str, inputs: Sequence[Any], items: Sequence[Item]) -> list[np.ndarray | None]:
    """Vectors for ``inputs``; a record whose input the model fails on is
    quarantined (and gets None), the others are kept."""
    if not inputs:
        return []
    try:
        embedder = st.embedders.get(model)
        matrix = embedder.embed(list(inputs))
        if matrix.shape[0] != len(inputs):
            raise ValueError(f"{model} returned {matrix.shape[0]} vectors for {len(inputs)} inputs")
        rows: list[np.ndarray | None] = list(matrix)
    except MODEL_ERRORS:
        rows = []
        for x, it in zip(inputs, items, strict=True):
            try:
                rows.append(st.embedders.get(model).embed([x])[0])
            except MODEL_ERRORS as exc:
                _model_failed(it, "embedding_failed", model, exc)
                rows.append(None)
    out: list[np.ndarray | None] = []
    for v, it in zip(rows, items, strict=True):
        if v is not None and not np.all(np.isfinite(v)):
            _model_failed(it, "embedding_invalid", model, ValueError("non-finite values in the vector"))
            v = None
        out.append(None if v is None else np.asarray(v, dtype=np.float32))
    return out


def _model_failed(it: Item, reason: str, model: str, exc: BaseException) -> None:
    if not it.pending:
        return
    it.fields["error_model"] = model
    it.quarantine(reason, f"{model}: {type(exc).__name__}: {exc}")
