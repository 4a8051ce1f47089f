"""Database helpers shared by the guardrail modules: an exclusive write
transaction on SQLite and PostgreSQL, JSON normalisation, UTC timestamps."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from app.errors import StorageError

__all__ = ["exclusive", "storage_errors", "jsonable", "as_utc", "lock_key"]


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def storage_errors(what: str) -> Iterator[None]:
    """Translate SQLAlchemy failures into :class:`StorageError`."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StorageError(f"guardrails: {what} failed: {exc.__class__.__name__}: {exc}") from exc


@contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[Connection]:
    """A transaction that no other ``exclusive(engine, name)`` runs beside.

    PostgreSQL takes ``pg_advisory_xact_lock`` (released at commit or
    rollback); SQLite opens the transaction with ``BEGIN IMMEDIATE``, which
    holds the database's write lock from the start. Commits on success.
    """
    with engine.connect() as conn:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(name)})
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: dict keys become strings, tuples and sets
    lists, non-finite floats and unknown objects their ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return jsonable(dump(mode="json"))
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    return str(value)


def as_utc(ts: datetime) -> datetime:
    """``ts`` as an aware UTC datetime; naive values are taken to be UTC
    (SQLite returns what it stored without the offset)."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)
