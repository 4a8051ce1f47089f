"""Faults of the upstream: what the source sends, and whether it answers."""

from __future__ import annotations

import dataclasses
import hashlib
from collections import deque
from collections.abc import Sequence

from app.errors import InputError
from app.taxonomy import RootCause
from evals.faults._base import Fault, FaultySource, require
from pipelines.ingestion import SAMPLE_SCHEMA_YAML, DatasetSchema
from pipelines.runtime import Job, Runtime, Source, SourceRecord

__all__ = [
    "TransientSourceErrors",
    "SourceDown",
    "SchemaChange",
    "CorruptFileFlood",
    "DuplicateFlood",
    "CONNECTION_RESET",
    "CONNECTION_REFUSED",
]

# Linux errno values, spelled out so the messages read the same everywhere.
_ECONNRESET, _ECONNREFUSED = 104, 111

CONNECTION_RESET = "ConnectionResetError: [Errno 104] Connection reset by peer"
"""The ``error`` of the ``stage_failed`` / ``stage_retry`` events transient_source_errors causes."""

CONNECTION_REFUSED = "ConnectionRefusedError: [Errno 111] Connection refused: source {upstream} unreachable"
"""The ``error`` source_down causes (and what the job's probe answers), with ``upstream`` filled in."""


# --------------------------------------------------------------------------- transient


class TransientSourceErrors(Fault):
    name = "transient_source_errors"
    description = (
        "The source's connection resets on its next few reads (enough to fail one run after its read "
        "retries), then recovers on its own: a later retry of the job succeeds."
    )
    expected_root_cause = RootCause.TRANSIENT_ERROR
    expected_playbook = "retry_with_backoff"

    def __init__(self, failures: int | None = None) -> None:
        """``failures``: how many reads raise; default ``max_stage_retries + 2``
        from the job's config (4 with the defaults), so one run exhausts its
        retries on the read stage and the next run sees one retry more."""
        super().__init__()
        require(failures is None or failures >= 1, self.name, f"failures must be >= 1, got {failures}")
        self.failures = failures
        self.remaining = 0

    def params(self) -> dict[str, object]:
        return {"failures": self.failures}

    @property
    def active(self) -> bool:
        return self._active and self.remaining > 0

    def _install(self, job: Job, rt: Runtime) -> None:
        n = self.failures
        if n is None:
            n = self._current_config(job, rt).max_stage_retries + 2
        self.remaining = n
        self.effects.update(failures=n, raised=0)
        self._wrap_source(job, lambda src: _ResettingSource(src, self))

    def _undo(self) -> None:
        self.remaining = 0

    def take_failure(self) -> bool:
        if not self.active:
            return False
        self.remaining -= 1
        self.effects["raised"] = int(self.effects.get("raised", 0)) + 1
        return True


class _ResettingSource(FaultySource):
    def __init__(self, inner: Source, fault: TransientSourceErrors) -> None:
        super().__init__(inner)
        self.fault = fault

    def read(self, n: int) -> list[SourceRecord]:
        # Fail before touching the inner source, as a dropped connection does: nothing is consumed.
        if self.fault.take_failure():
            raise ConnectionResetError(_ECONNRESET, "Connection reset by peer")
        return self.inner.read(n)


# --------------------------------------------------------------------------- outage


class SourceDown(Fault):
    name = "source_down"
    description = (
        "The upstream is unreachable: every read is refused and probing the source reports it down, "
        "until it comes back (after a few probes, or by hand)."
    )
    expected_root_cause = RootCause.UPSTREAM_OUTAGE
    expected_playbook = "wait_for_upstream"

    def __init__(self, heal_after_probes: int | None = 2, upstream: str = "s3://raw-uploads") -> None:
        """``heal_after_probes``: the upstream is back right after this many
        probes have found it down (None: only :meth:`heal` brings it back)."""
        super().__init__()
        require(
            heal_after_probes is None or heal_after_probes >= 1,
            self.name,
            f"heal_after_probes must be >= 1 or None, got {heal_after_probes}",
        )
        require(bool(upstream), self.name, "upstream must not be empty")
        self.heal_after_probes = heal_after_probes
        self.upstream = upstream
        self.probes_down = 0

    def params(self) -> dict[str, object]:
        return {"heal_after_probes": self.heal_after_probes, "upstream": self.upstream}

    @property
    def reason(self) -> str:
        return CONNECTION_REFUSED.format(upstream=self.upstream)

    def refused(self) -> ConnectionRefusedError:
        return ConnectionRefusedError(_ECONNREFUSED, f"Connection refused: source {self.upstream} unreachable")

    def _install(self, job: Job, rt: Runtime) -> None:
        self.effects.update(upstream=self.upstream, probes_down=0, refused_reads=0)
        self._wrap_source(job, lambda src: _UnreachableSource(src, self))

    def answer_probe(self) -> str | None:
        """The reason while down; heals itself once ``heal_after_probes`` probes found it down."""
        if not self.active:
            return None
        self.probes_down += 1
        self.effects["probes_down"] = self.probes_down
        if self.heal_after_probes is not None and self.probes_down >= self.heal_after_probes:
            self.effects["healed_by"] = "probes"
            self.heal()
        return self.reason


class _UnreachableSource(FaultySource):
    def __init__(self, inner: Source, fault: SourceDown) -> None:
        super().__init__(inner)
        self.fault = fault

    def read(self, n: int) -> list[SourceRecord]:
        if self.fault.active:
            self.fault.effects["refused_reads"] = int(self.fault.effects.get("refused_reads", 0)) + 1
            raise self.fault.refused()
        return self.inner.read(n)

    def probe(self) -> str | None:
        down = self.fault.answer_probe()
        return down if down is not None else super().probe()


# --------------------------------------------------------------------------- schema change


def _required_fields(schema_yaml: str | None, origin: str) -> list[str] | None:
    if not schema_yaml:
        return None
    schema = DatasetSchema.from_yaml(schema_yaml, origin=origin)
    return [name for name, spec in schema.metadata.fields.items() if spec.required]


class SchemaChange(Fault):
    name = "schema_change"
    description = (
        "The upstream renames a required metadata field (label -> category) in every record it sends: "
        "records fail the dataset schema and are quarantined as schema_violation."
    )
    expected_root_cause = RootCause.SCHEMA_CHANGE
    expected_playbook = "pause_and_quarantine"

    def __init__(self, field: str = "label", renamed_to: str = "category") -> None:
        super().__init__()
        require(bool(field) and bool(renamed_to), self.name, "field and renamed_to must not be empty")
        require(field != renamed_to, self.name, f"renaming {field!r} to itself changes nothing")
        self.field = field
        self.renamed_to = renamed_to

    def params(self) -> dict[str, object]:
        return {"field": self.field, "renamed_to": self.renamed_to}

    def _install(self, job: Job, rt: Runtime) -> None:
        row = rt.ensure_dataset(job.dataset, job.pipeline)
        required = _required_fields(row.schema_yaml, f"dataset {job.dataset!r}")
        registered = False
        if required is None:
            # No schema yet (the permissive default): the sample schema requires `label`.
            sample_required = _required_fields(SAMPLE_SCHEMA_YAML, "SAMPLE_SCHEMA_YAML") or []
            if self.field not in sample_required:
                raise InputError(
                    f"fault {self.name!r}: dataset {job.dataset!r} has no schema and the sample schema "
                    f"does not require {self.field!r} (it requires {', '.join(sample_required) or 'nothing'})"
                )
            rt.ensure_dataset(job.dataset, job.pipeline, SAMPLE_SCHEMA_YAML)
            registered = True
        elif self.field not in required:
            raise InputError(
                f"fault {self.name!r}: dataset {job.dataset!r}'s schema does not require {self.field!r}, "
                f"so renaming it would go unnoticed; pick one of: {', '.join(required) or '(none required)'}"
            )
        self.effects.update(schema_registered=registered, renamed=0)
        self._wrap_source(job, lambda src: _RenamingSource(src, self))

    def rename(self, record: SourceRecord) -> SourceRecord:
        if not self.active or self.field not in record.metadata:
            return record
        meta = {(self.renamed_to if k == self.field else k): v for k, v in record.metadata.items()}
        self.effects["renamed"] = int(self.effects.get("renamed", 0)) + 1
        return dataclasses.replace(record, metadata=meta)


class _RenamingSource(FaultySource):
    def __init__(self, inner: Source, fault: SchemaChange) -> None:
        super().__init__(inner)
        self.fault = fault

    def read(self, n: int) -> list[SourceRecord]:
        return [self.fault.rename(r) for r in self.inner.read(n)]


# --------------------------------------------------------------------------- corrupt files


def _share(seed: int, source: str) -> float:
    """A stable number in [0, 1) per record, so the same records are hit on every run."""
    digest = hashlib.sha256(f"{seed}\x00{source}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class CorruptFileFlood(Fault):
    name = "corrupt_file_flood"
    description = (
        "The upstream sends truncated or garbled files: a large share of records fail to decode and "
        "are quarantined (decode_error; not_utf8 for text)."
    )
    expected_root_cause = RootCause.DATA_QUALITY
    expected_playbook = "pause_and_quarantine"

    def __init__(self, fraction: float = 0.8, keep: float = 0.45, seed: int = 0) -> None:
        """``fraction`` of records (chosen by source name) are corrupted:
        binary files are cut to their first ``keep`` share of bytes, text gets
        bytes that are not UTF-8 in its middle."""
        super().__init__()
        require(0.0 < fraction <= 1.0, self.name, f"fraction must be in (0, 1], got {fraction}")
        require(0.0 < keep < 1.0, self.name, f"keep must be in (0, 1), got {keep}")
        self.fraction, self.keep, self.seed = fraction, keep, seed

    def params(self) -> dict[str, object]:
        return {"fraction": self.fraction, "keep": self.keep, "seed": self.seed}

    def _install(self, job: Job, rt: Runtime) -> None:
        self.effects.update(corrupted=0)
        self._wrap_source(job, lambda src: _CorruptingSource(src, self))

    def corrupt(self, record: SourceRecord) -> SourceRecord:
        data = record.data
        if not self.active or not data or _share(self.seed, record.source) >= self.fraction:
            return record
        if record.modality == "text" or (record.filename or "").lower().endswith(".txt"):
            mid = len(data) // 2
            garbled = data[:mid] + b"\xff\xfe\x00\xc3(" + data[mid + 5 :]
        else:
            garbled = data[: max(1, int(len(data) * self.keep))]
        self.effects["corrupted"] = int(self.effects.get("corrupted", 0)) + 1
        return dataclasses.replace(record, data=garbled)


class _CorruptingSource(FaultySource):
    def __init__(self, inner: Source, fault: CorruptFileFlood) -> None:
        super().__init__(inner)
        self.fault = fault

    def read(self, n: int) -> list[SourceRecord]:
        return [self.fault.corrupt(r) for r in self.inner.read(n)]


# --------------------------------------------------------------------------- replays


class DuplicateFlood(Fault):
    name = "duplicate_flood"
    description = (
        "The upstream replays everything it sent before under new names (<source>#replay-N): the ledger "
        "does not skip them, and exact duplicates swamp the run."
    )
    expected_root_cause = RootCause.DUPLICATE_FLOOD
    expected_playbook = "pause_and_quarantine"

    def __init__(self) -> None:
        super().__init__()
        self.rounds = 0

    def _install(self, job: Job, rt: Runtime) -> None:
        self.effects.update(replayed=0, rounds=0)
        self._wrap_source(job, lambda src: _ReplayingSource(src, self))

    def next_round(self) -> int:
        self.rounds += 1
        self.effects["rounds"] = self.rounds
        return self.rounds

    def replay(self, record: SourceRecord, round_: int) -> SourceRecord:
        self.effects["replayed"] = int(self.effects.get("replayed", 0)) + 1
        return dataclasses.replace(
            record, source=f"{record.source}#replay-{round_}", metadata=dict(record.metadata), ack_token=None
        )


class _ReplayingSource(FaultySource):
    """Each record the upstream sends is followed by its replay. Every source
    opened (each run) is a new replay round with new names."""

    def __init__(self, inner: Source, fault: DuplicateFlood) -> None:
        super().__init__(inner)
        self.fault = fault
        self._round: int | None = None
        self._buffer: deque[SourceRecord] = deque()

    def read(self, n: int) -> list[SourceRecord]:
        out: list[SourceRecord] = []
        while len(out) < n:
            if not self._buffer:
                batch = self.inner.read(n)
                if not batch:
                    break
                for rec in batch:
                    self._buffer.append(rec)
                    if self.fault.active:
                        if self._round is None:
                            self._round = self.fault.next_round()
                        self._buffer.append(self.fault.replay(rec, self._round))
            out.append(self._buffer.popleft())
        return out

    def ack(self, records: Sequence[SourceRecord]) -> None:
        # Replays are ours: only what the upstream really sent is acknowledged to it.
        suffix = f"#replay-{self._round}"
        real = [r for r in records if self._round is None or not r.source.endswith(suffix)]
        if real:
            self.inner.ack(real)
