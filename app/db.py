"""The metadata database: one SQLAlchemy engine for SQLite or PostgreSQL.

Every package declares its tables as SQLModel classes; :func:`init_db` imports
them all and creates what is missing.
"""

from __future__ import annotations

import importlib

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel, create_engine

from app.errors import StorageError

__all__ = ["make_engine", "init_db", "TABLE_MODULES"]

# Modules whose import registers SQLModel tables.
TABLE_MODULES = (
    "pipelines.runtime._models",
    "guardrails._models",
    "agents._store",
    "pipelines.quality._check_store",
    "pipelines.annotation._models",
    "pipelines.enrichment._models",
)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout so that a
    daemon and a CLI can share one file."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def init_db(engine: Engine) -> None:
    """Create every table that does not exist yet."""
    for name in TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    try:
        SQLModel.metadata.create_all(engine)
    except SQLAlchemyError as exc:
        raise StorageError(f"cannot initialise the metadata DB: {exc.__class__.__name__}: {exc}") from exc
