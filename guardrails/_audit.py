"""The audit log: an append-only, hash-chained trail of every guardrail
verdict and every action's outcome, with a verifier that finds edited,
deleted and reordered entries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from guardrails._db import as_utc, exclusive, jsonable, storage_errors
from guardrails._models import AuditEntry, AuditVerdict, utcnow

__all__ = ["AuditLog", "VerifyResult", "GENESIS_HASH", "entry_hash"]

# The ``prev_hash`` of the first entry.
GENESIS_HASH = "0" * 64

_LOCK = "dataops.guardrails.audit"

# The fields covered by an entry's hash, in the canonical JSON.
_HASHED = (
    "seq",
    "ts",
    "actor",
    "incident_id",
    "pipeline",
    "action",
    "args",
    "risk",
    "verdict",
    "reason",
    "idempotency_key",
    "result",
    "prev_hash",
)


def _canonical(entry: AuditEntry) -> str:
    data: dict[str, Any] = {name: getattr(entry, name) for name in _HASHED}
    data["ts"] = as_utc(entry.ts).isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(entry: AuditEntry) -> str:
    """``sha256(prev_hash + canonical JSON of the entry)`` as hex."""
    return hashlib.sha256((entry.prev_hash + _canonical(entry)).encode("utf-8")).hexdigest()


class VerifyResult(BaseModel):
    """The outcome of :meth:`AuditLog.verify`."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str = ""


class AuditLog:
    """The audit trail in the metadata DB. Appends are serialised so the
    chain stays linear under concurrent writers (processes included)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self._clock = clock or utcnow

    @property
    def engine(self) -> Engine:
        return self._engine

    def now(self) -> datetime:
        return as_utc(self._clock())

    def append(
        self,
        *,
        actor: str,
        action: str,
        verdict: AuditVerdict | str,
        pipeline: str | None = None,
        incident_id: str | None = None,
        args: dict[str, Any] | None = None,
        risk: str | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
        result: Any = None,
    ) -> AuditEntry:
        """Write one entry at the end of the chain and return it."""
        verdict = AuditVerdict(verdict)
        with storage_errors("audit append"), exclusive(self._engine, _LOCK) as conn:
            last = conn.execute(
                select(AuditEntry.seq, AuditEntry.hash).order_by(col(AuditEntry.seq).desc()).limit(1)
            ).first()
            entry = AuditEntry(
                seq=(last[0] + 1) if last else 1,
                ts=self.now(),
                actor=actor,
                incident_id=incident_id,
                pipeline=pipeline,
                action=action,
                args=jsonable(args or {}),
                risk=str(risk) if risk is not None else None,
                verdict=verdict.value,
                reason=reason,
                idempotency_key=idempotency_key,
                result=jsonable(result),
                prev_hash=last[1] if last else GENESIS_HASH,
                hash="",
            )
            entry.hash = entry_hash(entry)
            conn.execute(insert(AuditEntry).values(**entry.model_dump()))
        return entry

    def entries(
        self,
        incident_id: str | None = None,
        *,
        pipeline: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest ``limit`` entries (of one incident or pipeline), oldest first."""
        q = select(AuditEntry)
        if incident_id is not None:
            q = q.where(AuditEntry.incident_id == incident_id)
        if pipeline is not None:
            q = q.where(AuditEntry.pipeline == pipeline)
        q = q.order_by(col(AuditEntry.seq).desc()).limit(limit)
        with storage_errors("audit read"), Session(self._engine) as s:
            rows = list(s.exec(q))
        rows.reverse()
        return rows

    def count(
        self,
        *,
        verdicts: Collection[str],
        pipeline: str | None = None,
        incident_id: str | None = None,
        since: datetime | None = None,
        exclude_actions: Collection[str] = (),
    ) -> int:
        """How many entries match; the guardrails' attempt and rate budgets."""
        q = select(func.count()).select_from(AuditEntry).where(col(AuditEntry.verdict).in_([str(v) for v in verdicts]))
        if pipeline is not None:
            q = q.where(AuditEntry.pipeline == pipeline)
        if incident_id is not None:
            q = q.where(AuditEntry.incident_id == incident_id)
        if since is not None:
            q = q.where(col(AuditEntry.ts) >= as_utc(since))
        if exclude_actions:
            q = q.where(col(AuditEntry.action).not_in(list(exclude_actions)))
        with storage_errors("audit count"), Session(self._engine) as s:
            return int(s.exec(q).one())

    def head(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the last entry. Keep it somewhere else to detect
        a truncated tail, which the chain alone cannot show."""
        with storage_errors("audit read"), Session(self._engine) as s:
            row = s.exec(select(AuditEntry.seq, AuditEntry.hash).order_by(col(AuditEntry.seq).desc()).limit(1)).first()
        return (int(row[0]), str(row[1])) if row else None

    def verify(self, *, batch: int = 1000) -> VerifyResult:
        """Walk the chain from the first entry and report the first break.

        Finds an edited entry (its hash no longer matches), a deleted one (a
        gap in ``seq``) and a reordered or re-hashed one (``prev_hash`` no
        longer matches the entry before it).
        """
        prev, expected, checked = GENESIS_HASH, 1, 0
        last_seen: int | None = None
        with storage_errors("audit verify"), Session(self._engine) as s:
            while True:
                q = select(AuditEntry).order_by(col(AuditEntry.seq)).limit(batch)
                if last_seen is not None:
                    q = q.where(col(AuditEntry.seq) > last_seen)
                rows = list(s.exec(q))
                if not rows:
                    break
                for row in rows:
                    bad = _check(row, expected, prev)
                    if bad is not None:
                        return VerifyResult(ok=False, checked=checked, first_bad_seq=bad[0], reason=bad[1])
                    prev, expected, checked = row.hash, expected + 1, checked + 1
                last_seen = rows[-1].seq
                s.expunge_all()
        return VerifyResult(ok=True, checked=checked)


def _check(row: AuditEntry, expected: int, prev: str) -> tuple[int, str] | None:
    if row.seq != expected:
        if row.seq > expected:
            gap = "" if row.seq == expected + 1 else f" (entries {expected}..{row.seq - 1} are gone)"
            return expected, f"entry {expected} is missing{gap}"
        return row.seq, f"entry {row.seq} is out of sequence"
    if row.prev_hash != prev:
        before = f"entry {row.seq - 1}" if row.seq > 1 else "the start of the chain"
        return row.seq, f"entry {row.seq} does not chain to {before} (prev_hash differs)"
    if entry_hash(row) != row.hash:
        return row.seq, f"entry {row.seq} was altered (its hash does not match its contents)"
    return None
