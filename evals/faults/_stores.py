"""Faults written straight to the stores: a bad config version, a bad table snapshot."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import yaml

from app.taxonomy import RootCause
from evals.faults._base import Fault, require
from pipelines.ingestion import SAMPLE_SCHEMA, SAMPLE_SCHEMA_YAML
from pipelines.runtime import Job, Runtime

__all__ = ["BadConfig", "BadTableWrite", "high_res_sample_schema"]


def high_res_sample_schema(target_short_side: int = 512) -> str:
    """The sample schema, aiming at ``target_short_side`` px images.

    Under the sample schema every sample record scores 1.0, so no quality
    gate (at most 1.0) rejects them and ``bad_config`` shows almost nothing
    (only the 200 px near-duplicate variants score under 0.99). Aiming at
    512 px, the sample's 256 px images score about 0.81: accepted at the
    default gate of 0.5, quarantined as ``low_quality`` at 0.99. Register it
    with ``rt.ensure_dataset(dataset, "ingestion", high_res_sample_schema())``.
    """
    schema = yaml.safe_load(SAMPLE_SCHEMA_YAML)
    schema["image"]["target_short_side"] = target_short_side
    return yaml.safe_dump(schema, sort_keys=False)


class BadConfig(Fault):
    name = "bad_config"
    description = (
        "A deploy raises the quality gate (quality_reject_below 0.5 -> 0.99): records below near-perfect "
        "quality are quarantined as low_quality (visible where scores are under 0.99, e.g. the sample "
        "data under high_res_sample_schema())."
    )
    expected_root_cause = RootCause.CONFIG_ERROR
    expected_playbook = "restore_config"
    key = "quality_reject_below"
    actor = "deploy-bot"
    reason = "tune quality gate"

    def __init__(self, value: float = 0.99) -> None:
        super().__init__()
        require(0.0 <= value <= 1.0, self.name, f"value must be in [0, 1], got {value}")
        self.value = value

    def params(self) -> dict[str, object]:
        return {"value": self.value}

    def _install(self, job: Job, rt: Runtime) -> None:
        model = self._config_model()
        previous, cfg = rt.configs.current(job.pipeline, job.dataset, model)  # writes the defaults if none yet
        old = getattr(cfg, self.key)
        version, _ = rt.configs.set(
            job.pipeline, job.dataset, model, {self.key: self.value}, actor=self.actor, reason=self.reason
        )
        self.effects.update(key=self.key, old_value=old, new_value=self.value, previous_version=previous, version=version)

    def _undo(self) -> None:
        """Restore the version before the deploy; if other changes came after
        it, put back only the key this fault changed."""
        job, rt, model = self.job, self.rt, self._config_model()
        reason = f"heal {self.name}"
        if rt.configs.latest_version(job.pipeline, job.dataset) == self.effects["version"]:
            version, _ = rt.configs.restore(
                job.pipeline, job.dataset, model, self.effects["previous_version"], actor="chaos", reason=reason
            )
        else:
            version, _ = rt.configs.set(
                job.pipeline, job.dataset, model, {self.key: self.effects["old_value"]}, actor="chaos", reason=reason
            )
        self.effects["heal_version"] = version


class BadTableWrite(Fault):
    name = "bad_table_write"
    description = (
        "A manual backfill commits a bad snapshot straight to the dataset's Iceberg table: rows with "
        "empty uris, quality -1 and sample ids the ledger never saw. Only a rollback fixes it."
    )
    expected_root_cause = RootCause.DATA_CORRUPTION
    expected_playbook = "rollback_snapshot"
    # It lands between runs (a backfill while the pipeline is idle), not inside one.
    between_runs = True

    def __init__(self, rows: int = 8) -> None:
        super().__init__()
        require(rows >= 1, self.name, f"rows must be >= 1, got {rows}")
        self.rows = rows

    def params(self) -> dict[str, object]:
        return {"rows": self.rows}

    @property
    def active(self) -> bool:
        """True while the bad snapshot is in the table's current lineage
        (:meth:`heal` does not change that; rolling the table back does)."""
        if not self._applied or self._rt is None:
            return False
        bad = self.effects.get("snapshot_id")
        snaps = {s.snapshot_id: s.parent_id for s in self._rt.offline.snapshots(self.job.dataset)}
        current = self._rt.offline.current_snapshot_id(self.job.dataset)
        while current is not None:
            if current == bad:
                return True
            current = snaps.get(current)
        return False

    def _install(self, job: Job, rt: Runtime) -> None:
        dataset = job.dataset
        previous = rt.offline.current_snapshot_id(dataset) if dataset in rt.offline.tables() else None
        rt.offline.ensure_table(dataset, SAMPLE_SCHEMA)
        run_id = f"manual-backfill-{uuid.uuid4().hex[:8]}"
        rows = _garbage_rows(dataset, run_id, self.rows)
        snapshot = rt.offline.append(dataset, pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA), run_id=run_id)
        self.effects.update(
            snapshot_id=snapshot,
            previous_snapshot_id=previous,
            run_id=run_id,
            rows=len(rows),
            sample_ids=[r["sample_id"] for r in rows],
        )

    def heal(self) -> None:
        """Nothing heals a committed snapshot but a rollback: this changes nothing."""


def _garbage_rows(dataset: str, run_id: str, n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            # Shaped like real sample ids (20 hex digits), but no ledger row has them.
            "sample_id": uuid.uuid4().hex[:20],
            "dataset": dataset,
            "source": None,
            "uri": None if i % 2 == 0 else "",
            "modality": "image",
            "sha256": None,
            "phash": None,
            "phash_hex": None,
            "quality_score": -1.0,
            "size_bytes": 0,
            "metadata": "{}",
            "run_id": run_id,
            "ingested_at": now,
        }
        for i in range(n)
    ]
