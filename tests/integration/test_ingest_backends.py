"""Ingestion end to end on the real services: PostgreSQL metadata and
catalog, Redis online store, and NATS JetStream / Redis Streams sources."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlmodel import Session, select

from app.settings import load_settings
from pipelines.ingestion import FolderSource, ingest, make_sample_dataset, publish_nats, publish_redis
from pipelines.runtime import RecordRow, Runtime
from tests.conftest import NATS_URL, PG_URL, REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_runtime(tmp_path: Path):
    pg = PG_URL.replace("postgresql://", "postgresql+psycopg://")
    rt = Runtime.open(
        load_settings(home=tmp_path / "ws", database_url=PG_URL, catalog_url=pg, online_store_url=REDIS_URL)
    )
    yield rt
    rt.close()


def _events(folder: Path) -> list:
    with FolderSource(str(folder)) as src:
        return src.read(10_000)


def test_batch_ingest_on_postgres_and_redis(pg_runtime: Runtime, tmp_path: Path) -> None:
    info = make_sample_dataset(tmp_path / "in", n_images=12, n_audio=2, n_text=3)
    ds = f"pg_{uuid.uuid4().hex[:8]}"
    s = ingest(pg_runtime, str(info.folder), ds)
    assert s.status == "succeeded"
    assert s.read == info.n_files == s.accepted + s.duplicates + s.quarantined
    assert s.accepted == info.n_accepted
    assert pg_runtime.online.count(f"{ds}/") == s.accepted
    assert pg_runtime.offline.scan(ds).num_rows == s.accepted
    again = ingest(pg_runtime, str(info.folder), ds)
    assert again.skipped == info.n_files and again.read == 0


@pytest.mark.parametrize("broker", ["nats", "redis"])
def test_stream_ingest_acks_after_write(pg_runtime: Runtime, tmp_path: Path, broker: str) -> None:
    info = make_sample_dataset(tmp_path / "in", n_images=6, n_audio=1, n_text=2)
    events: list = _events(info.folder)
    events.append({"id": "garbage"})  # no payload: quarantined, not lost
    name = f"it{uuid.uuid4().hex[:8]}"
    if broker == "nats":
        publish_nats(NATS_URL, name, f"{name}.in", events)
        uri = f"{NATS_URL}/{name}/{name}.in"
    else:
        publish_redis(REDIS_URL, name, events)
        uri = f"{REDIS_URL.rsplit('/', 1)[0]}/{name}"
    ds = f"{broker}_{name}"
    s = ingest(pg_runtime, uri, ds, idle_timeout=1.0)
    assert s.status == "succeeded", s.error
    assert s.read == len(events) == s.accepted + s.duplicates + s.quarantined
    assert s.accepted == info.n_accepted
    with Session(pg_runtime.engine) as sess:
        sources = [r.source for r in sess.exec(select(RecordRow).where(RecordRow.dataset == ds))]
    assert len(sources) == len(set(sources)) == len(events)
    # Everything was acknowledged: reading the stream again yields nothing new.
    again = ingest(pg_runtime, uri, ds, idle_timeout=0.5)
    assert again.read == 0 and again.skipped == 0
    assert json.dumps(s.quarantine_reasons)
