"""Shared guardrail state in the metadata DB: the kill switch, the
per-pipeline in-flight lock and the idempotency ledger of actions.

Every operation here is atomic across processes: the lock and the ledger
rely on primary-key conflicts and conditional updates, never on a read
followed by a blind write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import delete, insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.errors import GuardrailError
from guardrails._db import exclusive, jsonable, storage_errors
from guardrails._models import ActionLedger, InFlight, KillSwitch, LedgerStatus

__all__ = ["KillSwitchStore", "InFlightLocks", "Ledger"]

T = TypeVar("T")

_TRIES = 5


class KillSwitchStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def set(self, scope: str, *, paused: bool, by: str, reason: str, at: datetime) -> None:
        values = {"paused": paused, "by": by, "reason": reason, "at": at}
        with storage_errors("kill switch"), exclusive(self._engine, "dataops.guardrails.kill") as conn:
            done = conn.execute(update(KillSwitch).where(col(KillSwitch.scope) == scope).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(KillSwitch).values(scope=scope, **values))

    def active(self, scopes: list[str]) -> KillSwitch | None:
        """The first of ``scopes`` that is paused, in the order given."""
        with storage_errors("kill switch"), Session(self._engine) as s:
            rows = {
                r.scope: r
                for r in s.exec(select(KillSwitch).where(col(KillSwitch.scope).in_(scopes), col(KillSwitch.paused)))
            }
        for scope in scopes:
            if scope in rows:
                return rows[scope]
        return None

    def all(self) -> list[KillSwitch]:
        with storage_errors("kill switch"), Session(self._engine) as s:
            return list(s.exec(select(KillSwitch).order_by(col(KillSwitch.scope))))


class InFlightLocks:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def holder(self, pipeline: str) -> InFlight | None:
        with storage_errors("in-flight lock"), Session(self._engine) as s:
            return s.get(InFlight, pipeline)

    def acquire(self, pipeline: str, incident_id: str, at: datetime) -> bool:
        """Take the lock with an INSERT that fails on conflict; re-entrant for
        the incident that already holds it."""
        with storage_errors("in-flight lock"):
            for _ in range(_TRIES):
                try:
                    with self._engine.begin() as conn:
                        conn.execute(insert(InFlight).values(pipeline=pipeline, incident_id=incident_id, since=at))
                    return True
                except IntegrityError:
                    pass
                held = self.holder(pipeline)
                if held is not None:
                    return held.incident_id == incident_id
        return False

    def release(self, pipeline: str, incident_id: str | None) -> bool:
        """Drop the lock if ``incident_id`` holds it (any holder when None)."""
        q = delete(InFlight).where(col(InFlight.pipeline) == pipeline)
        if incident_id is not None:
            q = q.where(col(InFlight.incident_id) == incident_id)
        with storage_errors("in-flight lock"), self._engine.begin() as conn:
            return bool(conn.execute(q).rowcount)


@dataclass(frozen=True)
class _Claim:
    run: bool
    result: Any = None


class Ledger:
    """The idempotency ledger behind :meth:`Guardrails.run_once`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, key: str) -> ActionLedger | None:
        with storage_errors("action ledger"), Session(self._engine) as s:
            return s.get(ActionLedger, key)

    def run_once(
        self,
        key: str,
        fn: Callable[[], T],
        *,
        now: Callable[[], datetime],
        rerun_unfinished: bool = False,
    ) -> T:
        claim = self._claim(key, now(), rerun_unfinished)
        if not claim.run:
            stored: T = claim.result
            return stored
        try:
            result = fn()
        except BaseException as exc:
            self._finish(key, LedgerStatus.FAILED, {"error": f"{exc.__class__.__name__}: {exc}"}, now())
            raise
        self._finish(key, LedgerStatus.DONE, result, now())
        return result

    def _claim(self, key: str, at: datetime, rerun_unfinished: bool) -> _Claim:
        with storage_errors("action ledger"):
            for _ in range(_TRIES):
                try:
                    with self._engine.begin() as conn:
                        conn.execute(
                            insert(ActionLedger).values(
                                idempotency_key=key, status=LedgerStatus.STARTED.value, attempts=1, started_at=at
                            )
                        )
                    return _Claim(run=True)
                except IntegrityError:
                    pass
                row = self.get(key)
                if row is None:
                    continue
                if row.status == LedgerStatus.DONE:
                    return _Claim(run=False, result=row.result)
                if row.status == LedgerStatus.STARTED and not rerun_unfinished:
                    raise GuardrailError(
                        f"action {key!r} started at {row.started_at} and has not finished: it may be "
                        "running elsewhere or may have been cut off by a crash; check its effect, then "
                        "rerun with rerun_unfinished=True"
                    )
                # A failed (or, when asked, an unfinished) action runs again, once.
                with self._engine.begin() as conn:
                    taken = conn.execute(
                        update(ActionLedger)
                        .where(
                            col(ActionLedger.idempotency_key) == key,
                            col(ActionLedger.status) == row.status,
                            col(ActionLedger.attempts) == row.attempts,
                        )
                        .values(
                            status=LedgerStatus.STARTED.value,
                            attempts=row.attempts + 1,
                            started_at=at,
                            finished_at=None,
                            result=None,
                        )
                    )
                if taken.rowcount == 1:
                    return _Claim(run=True)
        raise GuardrailError(f"action {key!r}: could not claim it in the ledger; another worker keeps it busy")

    def _finish(self, key: str, status: LedgerStatus, result: Any, at: datetime) -> None:
        with storage_errors("action ledger"), self._engine.begin() as conn:
            conn.execute(
                update(ActionLedger)
                .where(col(ActionLedger.idempotency_key) == key)
                .values(status=status.value, result=jsonable(result), finished_at=at)
            )
