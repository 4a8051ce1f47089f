"""The ingestion pipeline: decode and validate, score quality, dedup (exact
and perceptual, against everything ingested before), store binaries
content-addressed, stage rows, and publish one Iceberg snapshot per run."""

from __future__ import annotations

import json
import threading
from typing import Any

import pyarrow as pa
from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from app.errors import RecordRejected
from pipelines.ingestion._decode import ImageInfo, decode_record
from pipelines.ingestion._nearindex import NearDupIndex
from pipelines.ingestion._phash import to_hex, to_signed, to_unsigned
from pipelines.ingestion._quality import score_quality
from pipelines.ingestion._schema import DatasetSchema
from pipelines.runtime import (
    ACCEPTED,
    Item,
    PipelineConfig,
    SampleRow,
    Stage,
    StageContext,
    tunable,
    utcnow,
)

__all__ = ["IngestionConfig", "IngestionPipeline", "SAMPLE_SCHEMA"]

_EXT = {"PNG": ".png", "JPEG": ".jpg", "audio": ".wav", "text": ".txt"}

SAMPLE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string()),
        pa.field("source", pa.string()),
        pa.field("uri", pa.string()),
        pa.field("modality", pa.string()),
        pa.field("sha256", pa.string()),
        pa.field("phash", pa.int64()),
        pa.field("phash_hex", pa.string()),
        pa.field("quality_score", pa.float64()),
        pa.field("size_bytes", pa.int64()),
        pa.field("metadata", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    ]
)


class IngestionConfig(PipelineConfig):
    phash_max_distance: int = tunable(
        6, ge=0, le=16, description="Hamming distance under which two images are near-duplicates."
    )
    quality_reject_below: float = tunable(
        0.5, ge=0.0, le=1.0, description="Quarantine records whose quality score is below this."
    )


class IngestionPipeline:
    name = "ingestion"
    config_model: type[PipelineConfig] = IngestionConfig

    def __init__(self, schema: DatasetSchema) -> None:
        self.schema = schema

    def stages(self) -> list[Stage]:
        return [
            Stage("decode", self._decode),
            Stage("dedup", self._dedup, per_record=False),
            Stage("store", self._store),
        ]

    # -- per run -----------------------------------------------------------
    def open(self, ctx: StageContext) -> None:
        # Opening the Iceberg catalog imports pyiceberg (~0.4 s): overlap it
        # with the first batches instead of paying it at the end.
        rt = ctx.runtime
        ctx.state["warm"] = threading.Thread(target=lambda: rt.offline, name="offline-warmup", daemon=True)
        ctx.state["warm"].start()
        index = NearDupIndex()
        with Session(ctx.runtime.engine) as s:
            rows = s.exec(
                select(SampleRow.sample_id, SampleRow.phash).where(
                    SampleRow.dataset == ctx.dataset, col(SampleRow.phash).is_not(None)
                )
            )
            index.add_many((sid, to_unsigned(ph)) for sid, ph in rows if ph is not None)
        ctx.state["index"] = index

    # -- stages ------------------------------------------------------------
    def _decode(self, item: Item, ctx: StageContext) -> None:
        rec = item.record
        invalid = rec.metadata.get("_invalid_event")
        if invalid:
            raise RecordRejected("invalid_event", str(invalid))
        decoded = decode_record(rec.data, filename=rec.filename, modality=rec.modality)
        self.schema.check_modality(decoded.modality)
        meta = self.schema.validate_metadata(rec.metadata)
        cfg: IngestionConfig = ctx.config  # type: ignore[assignment]
        report = score_quality(decoded, self.schema)
        if report.violations or report.score < cfg.quality_reject_below:
            raise RecordRejected("low_quality", f"score {report.score:.2f}: {', '.join(report.issues) or 'low'}")
        f = item.fields
        f["modality"], f["info"], f["meta"], f["quality"] = decoded.modality, decoded, meta, report.score
        if isinstance(decoded, ImageInfo):
            f["phash"] = decoded.phash

    def _dedup(self, items: list[Item], ctx: StageContext) -> None:
        cfg: IngestionConfig = ctx.config  # type: ignore[assignment]
        shas = list({i.sha256 for i in items})
        with Session(ctx.runtime.engine) as s:
            known = dict(
                s.exec(
                    select(SampleRow.sha256, SampleRow.sample_id).where(
                        SampleRow.dataset == ctx.dataset, col(SampleRow.sha256).in_(shas)
                    )
                ).all()
            )
        index: NearDupIndex = ctx.state["index"]
        batch_index = NearDupIndex()
        for item in items:
            if item.sha256 in known:
                item.mark_duplicate(known[item.sha256], "exact")
                continue
            sample_id = _sample_id(item.sha256)
            ph = item.fields.get("phash")
            if ph is not None:
                hit = _closest(
                    index.nearest(ph, cfg.phash_max_distance), batch_index.nearest(ph, cfg.phash_max_distance)
                )
                if hit is not None:
                    item.mark_duplicate(hit[0], "near")
                    item.fields["distance"] = hit[1]
                    continue
                batch_index.add(sample_id, ph)
            known[item.sha256] = sample_id
            item.fields["sample_id"] = sample_id

    def _store(self, item: Item, ctx: StageContext) -> None:
        info = item.fields["info"]
        ext = _EXT.get(info.format if isinstance(info, ImageInfo) else info.modality, "")
        item.fields["uri"] = ctx.runtime.objects.put(item.record.data, ext=ext)
        item.accept(item.fields["sample_id"])

    # -- commit ------------------------------------------------------------
    def commit_rows(self, items: list[Item], ctx: StageContext, session: Session) -> None:
        now = utcnow()
        rows = [
            {
                "dataset": ctx.dataset,
                "sample_id": i.sample_id,
                "run_id": ctx.run_id,
                "source": i.record.source,
                "uri": i.fields["uri"],
                "modality": i.fields["modality"],
                "sha256": i.sha256,
                "phash": None if i.fields.get("phash") is None else to_signed(i.fields["phash"]),
                "quality": float(i.fields["quality"]),
                "size_bytes": len(i.record.data),
                "meta": i.fields["meta"],
                "created_at": now,
                "committed": False,
            }
            for i in items
            if i.outcome == ACCEPTED
        ]
        if rows:
            session.execute(insert(SampleRow), rows)

    def after_commit(self, items: list[Item], ctx: StageContext) -> None:
        index: NearDupIndex = ctx.state["index"]
        online: dict[str, dict[str, Any]] = {}
        for i in items:
            if i.outcome != ACCEPTED or i.sample_id is None:
                continue
            ph = i.fields.get("phash")
            if ph is not None:
                index.add(i.sample_id, ph)
            online[f"{ctx.dataset}/{i.sample_id}"] = {
                "sample_id": i.sample_id,
                "dataset": ctx.dataset,
                "source": i.record.source,
                "uri": i.fields["uri"],
                "modality": i.fields["modality"],
                "sha256": i.sha256,
                "phash": None if ph is None else to_hex(ph),
                "quality_score": i.fields["quality"],
                "metadata": i.fields["meta"],
                "run_id": ctx.run_id,
            }
        if online:
            ctx.runtime.online.put_many(online)

    def finalize(self, ctx: StageContext) -> int | None:
        """Append this run's staged samples to the dataset's table as one snapshot."""
        rt = ctx.runtime
        warm = ctx.state.get("warm")
        if warm is not None:
            warm.join()
        table_cols = SampleRow.__table__.columns  # type: ignore[attr-defined]
        with Session(rt.engine) as s:
            # Plain rows, not ORM objects: building a model costs more than the row.
            rows = list(s.execute(select(*table_cols).where(table_cols.run_id == ctx.run_id)).mappings())
        if not rows:
            return None
        table = pa.Table.from_pylist([_sample_record(r) for r in rows], schema=SAMPLE_SCHEMA)
        rt.offline.ensure_table(ctx.dataset, SAMPLE_SCHEMA)
        snapshot = rt.offline.append(ctx.dataset, table, run_id=ctx.run_id)
        with Session(rt.engine) as s:
            s.execute(update(SampleRow).where(col(SampleRow.run_id) == ctx.run_id).values(committed=True))
            s.commit()
        return snapshot


def _sample_id(sha256: str) -> str:
    return sha256[:20]


def _closest(*hits: tuple[str, int] | None) -> tuple[str, int] | None:
    found = [h for h in hits if h is not None]
    return min(found, key=lambda h: h[1]) if found else None


def _sample_record(r: Any) -> dict[str, Any]:
    return {
        "sample_id": r["sample_id"],
        "dataset": r["dataset"],
        "source": r["source"],
        "uri": r["uri"],
        "modality": r["modality"],
        "sha256": r["sha256"],
        "phash": r["phash"],
        "phash_hex": None if r["phash"] is None else to_hex(to_unsigned(r["phash"])),
        "quality_score": r["quality"],
        "size_bytes": r["size_bytes"],
        "metadata": json.dumps(r["meta"], sort_keys=True, default=str),
        "run_id": r["run_id"],
        "ingested_at": r["created_at"] or utcnow(),
    }
