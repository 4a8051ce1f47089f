"""The backend every guardrail conformance test runs against: SQLite always,
PostgreSQL (marked ``integration``) when one is reachable. PostgreSQL runs
use a schema of their own per test session and fresh tables per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from app.db import make_engine
from guardrails import GuardrailPolicy, Guardrails, ModelBounds, load_policy
from guardrails._models import GUARDRAIL_TABLES

_PG_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)

# Bounds as the pipeline config models declare them.
MODEL_BOUNDS: ModelBounds = {
    "ingestion": {"batch_size": (1, 4096), "workers": (1, 32), "retry_backoff_s": (0.0, 60.0)},
    "annotation": {"batch_size": (1, 4096), "workers": (1, 32), "autolabel_threshold": (0.5, 1.0)},
    "enrichment": {"batch_size": (1, 4096), "workers": (1, 32)},
}


def _find_postgres() -> str | None:
    env = os.environ.get("DATAOPS_TEST_PG_URL")
    for url in (env,) if env else _PG_CANDIDATES:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return url
        except psycopg.Error:
            continue
    return None


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A SQLAlchemy URL whose connections see only a schema made for this session."""
    url = _find_postgres()
    if url is None:
        pytest.skip("PostgreSQL is not reachable")
    schema = f"guardrails_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    driver_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{driver_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _fresh_tables(engine: Engine) -> None:
    SQLModel.metadata.drop_all(engine, tables=list(GUARDRAIL_TABLES))
    SQLModel.metadata.create_all(engine, tables=list(GUARDRAIL_TABLES))


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'guardrails.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    eng = make_engine(url)
    _fresh_tables(eng)
    yield eng
    eng.dispose()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def policy() -> GuardrailPolicy:
    return load_policy()


@pytest.fixture
def guards(engine: Engine, policy: GuardrailPolicy, clock: FakeClock) -> Guardrails:
    return Guardrails(engine, policy, MODEL_BOUNDS, clock=clock)


def with_policy(policy: GuardrailPolicy, **changes: object) -> GuardrailPolicy:
    """A validated copy of ``policy`` with ``changes`` applied."""
    data = policy.model_dump(by_alias=True)
    data.update(changes)
    return GuardrailPolicy.model_validate(data)
