"""Stream sources against a real NATS JetStream and a real Redis: at-least-once
delivery, acks, and redelivery of whatever was not acknowledged before a
close or a crash."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import pytest
import redis

from app.errors import StorageError
from pipelines.ingestion._sources import INVALID_EVENT_KEY, open_source
from pipelines.ingestion._streams import NatsJetStreamSource, RedisStreamSource, publish_nats, publish_redis
from pipelines.runtime._records import Source, SourceRecord
from tests.conftest import NATS_URL, REDIS_URL, reachable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N = 10


def _require(url: str) -> None:
    parts = urlsplit(url)
    if not reachable(parts.hostname or "127.0.0.1", parts.port or 0):
        pytest.skip(f"{url} is not reachable")


def _events(tag: str) -> list[Any]:
    events: list[Any] = [{"id": f"{tag}-{i}", "modality": "text", "text": f"event {i}"} for i in range(N - 1)]
    events.insert(4, b"{not json")  # a malformed payload is a record to quarantine, not an error
    return events


@dataclass
class Backend:
    """One stream under test: how to publish to it and (re)open a consumer on it."""

    name: str
    publish: Callable[[list[Any]], list[Any]]
    open: Callable[..., Any]  # a Source that is also a context manager
    crash_opts: dict[str, Any]


def _nats_backend() -> Iterator[Backend]:
    _require(NATS_URL)
    stream, subject, durable = (f"T{uuid.uuid4().hex[:12]}", f"t.{uuid.uuid4().hex[:8]}", "dataops-test")

    def open_(**opts: Any) -> Source:
        return open_source(f"{NATS_URL}/{stream}/{subject}", durable=durable, **{"idle_timeout": 0.5, **opts})

    yield Backend(
        "nats",
        lambda events: publish_nats(NATS_URL, stream, subject, events),
        open_,
        {"ack_wait": 1.0},
    )

    async def drop() -> None:
        nc = await nats.connect(NATS_URL)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(drop())
    finally:
        loop.close()


def _redis_backend() -> Iterator[Backend]:
    _require(REDIS_URL)
    server = REDIS_URL.rsplit("/", 1)[0] if urlsplit(REDIS_URL).path.strip("/") else REDIS_URL
    stream = f"dataops-test-{uuid.uuid4().hex[:12]}"

    def open_(**opts: Any) -> Source:
        return open_source(f"{server}/{stream}", **{"idle_timeout": 0.5, **opts})

    yield Backend("redis", lambda events: publish_redis(server, stream, events), open_, {})
    client = redis.Redis.from_url(server)
    client.delete(stream)
    client.close()


@pytest.fixture(params=["nats", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    yield from (_nats_backend() if request.param == "nats" else _redis_backend())


def _drain(src: Source, n: int = 3, deadline: float = 20.0, want: int | None = None) -> list[SourceRecord]:
    """Read batches until the source is idle (or ``want`` records arrived)."""
    out: list[SourceRecord] = []
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        batch = src.read(n)
        assert len(batch) <= n
        out.extend(batch)
        if want is None and not batch:
            break
        if want is not None and len(out) >= want:
            break
    return out


def test_unacked_records_are_redelivered_after_close(backend: Backend) -> None:
    tag = uuid.uuid4().hex[:6]
    backend.publish(_events(tag))

    src = backend.open()
    first = _drain(src)
    assert len(first) == N
    assert len({r.source for r in first}) == N
    prefix = "nats://" if backend.name == "nats" else "redis://"
    assert all(r.source.startswith(prefix) for r in first)
    bad = [r for r in first if r.metadata.get(INVALID_EVENT_KEY)]
    assert len(bad) == 1 and bad[0].data == b"{not json" and bad[0].modality is None
    good = [r for r in first if not r.metadata.get(INVALID_EVENT_KEY)]
    assert [r.data for r in good] == [f"event {i}".encode() for i in range(N - 1)]
    assert all(r.modality == "text" for r in good)

    acked, unacked = first[:6], first[6:]
    src.ack(acked)
    src.close()  # "crash" before the remaining records' durable write

    src = backend.open()
    again = _drain(src, want=len(unacked))
    assert sorted(r.source for r in again) == sorted(r.source for r in unacked)
    assert sorted(r.data for r in again) == sorted(r.data for r in unacked)
    src.ack(again)
    assert src.read(5) == []
    src.close()

    src = backend.open()
    assert _drain(src) == []
    src.close()


_CRASH = """
import json, os, sys
from pipelines.ingestion._sources import open_source
opts = json.loads(sys.argv[2])
src = open_source(sys.argv[1], **opts)
got = []
while len(got) < 7:
    batch = src.read(3)
    if not batch:
        break
    got.extend(batch)
src.ack(got[:2])
print(json.dumps([r.source for r in got]), flush=True)
os._exit(1)  # a hard crash: no close, no nak
"""


def test_hard_crash_redelivers_exactly_the_unacked(backend: Backend) -> None:
    tag = uuid.uuid4().hex[:6]
    backend.publish(_events(tag))
    src = backend.open(**backend.crash_opts)
    uri = src.uri
    src.close()  # created the consumer; read nothing
    opts = {"idle_timeout": 0.5, **backend.crash_opts}
    if backend.name == "nats":
        opts["durable"] = "dataops-test"
    proc = subprocess.run(
        [sys.executable, "-c", _CRASH, uri, json.dumps(opts)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(seen) >= 7

    src = backend.open(**backend.crash_opts)
    records = _drain(src, n=4, want=N - 2)  # NATS: after ack_wait; Redis: this consumer's pending, at once
    sources = [r.source for r in records]
    assert len(sources) == len(set(sources)) == N - 2
    assert set(seen[2:]) <= set(sources) and not set(seen[:2]) & set(sources)
    src.ack(records)
    src.close()
    src = backend.open(**backend.crash_opts)
    assert _drain(src) == []
    src.close()


def test_max_messages_and_context_manager(backend: Backend) -> None:
    backend.publish(_events(uuid.uuid4().hex[:6]))
    with backend.open(max_messages=4) as src:
        got = _drain(src, n=3)
        assert len(got) == 4
        src.ack(got)
    with backend.open() as src:
        rest = _drain(src, n=10)
        assert len(rest) == N - 4
        src.ack(rest)


def test_unreachable_servers_are_one_line_storage_errors() -> None:
    with pytest.raises(StorageError, match=r"^cannot reach NATS at nats://127\.0\.0\.1:1: connection refused$"):
        NatsJetStreamSource("nats://127.0.0.1:1", "S", "s", connect_timeout=1.0)
    with pytest.raises(StorageError, match=r"^cannot reach Redis at redis://127\.0\.0\.1:1: connection refused$"):
        RedisStreamSource("redis://127.0.0.1:1", "s", connect_timeout=1.0)
    with pytest.raises(StorageError, match=r"cannot reach NATS at nats://\*\*\*@127\.0\.0\.1:1"):
        publish_nats("nats://user:pw@127.0.0.1:1", "S", "s", [], connect_timeout=1.0)
