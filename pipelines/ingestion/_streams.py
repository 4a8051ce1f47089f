"""Stream sources (NATS JetStream, Redis Streams) and the publishing helpers
used by tests and demos. ``open_source`` (re-exported here) picks a source by URI.

Both streams deliver at least once: a record is acknowledged only when the
runtime calls ``ack`` after the durable write, so whatever was read but not
acknowledged before a crash is delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
import redis
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from app.errors import InputError, PipelineError, StorageError
from pipelines.ingestion._sources import (
    INVALID_EVENT_KEY,
    _Closing,
    encode_event,
    event_record,
    open_source,
    redact_url,
)
from pipelines.runtime._records import SourceRecord

__all__ = ["NatsJetStreamSource", "RedisStreamSource", "open_source", "publish_nats", "publish_redis"]

_T = TypeVar("_T")
EventLike = SourceRecord | Mapping[str, Any] | bytes | str


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, (TimeoutError, redis.TimeoutError)):
        return "timed out"
    if isinstance(exc, redis.ConnectionError) and "refused" in str(exc).lower():
        return "connection refused"
    if isinstance(exc, nats.js.errors.APIError) and exc.description:
        return str(exc.description)
    return str(exc).strip() or type(exc).__name__


def _fixed(source: str) -> Callable[[str | None], str]:
    """A stream record's source does not depend on the event id."""
    return lambda _event_id: source


class _Stream(_Closing):
    """What both stream sources share: option checks, the closed state and the
    ``max_messages`` budget."""

    uri: str
    _closed = True

    def __init__(self, idle_timeout: float, max_messages: int | None) -> None:
        if not idle_timeout > 0:
            raise InputError(f"idle_timeout must be > 0 seconds, got {idle_timeout}")
        if max_messages is not None and max_messages < 0:
            raise InputError(f"max_messages must be >= 0, got {max_messages}")
        self._idle_timeout, self._remaining = idle_timeout, max_messages

    def _budget(self, n: int) -> int:
        """How many records ``read(n)`` may return now."""
        if self._closed:
            raise StorageError(f"source {self.uri} is closed")
        return n if self._remaining is None else min(n, self._remaining)

    def _spent(self, records: list[SourceRecord]) -> list[SourceRecord]:
        if self._remaining is not None:
            self._remaining -= len(records)
        return records


# --------------------------------------------------------------------------- NATS


def _no_running_loop(what: str) -> None:
    """The NATS calls here block on a private loop, which cannot run inside another one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise PipelineError(f"{what}: NATS calls here are synchronous; make them from a thread with no running event loop")


def _shutdown_loop(loop: asyncio.AbstractEventLoop) -> None:
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


async def _nats_connect(url: str, connect_timeout: float, reconnect_attempts: int) -> NatsClient:
    errors: list[BaseException] = []

    async def on_error(exc: Exception) -> None:
        del errors[:-4]
        errors.append(exc)

    nc = NatsClient()
    try:
        opts: dict[str, Any] = {"connect_timeout": connect_timeout, "reconnect_time_wait": 1.0, "error_cb": on_error}
        connecting = nc.connect(servers=[url], name="dataops-ingest", max_reconnect_attempts=reconnect_attempts, **opts)
        await asyncio.wait_for(connecting, timeout=connect_timeout)
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        with contextlib.suppress(Exception):
            await nc.close()
        cause = errors[-1] if errors else exc
        raise StorageError(f"cannot reach NATS at {redact_url(url)}: {_reason(cause)}") from None
    return nc


async def _ensure_stream(js: JetStreamContext, stream: str, subject: str) -> None:
    try:
        await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        await js.add_stream(name=stream, subjects=[subject])


class NatsJetStreamSource(_Stream):
    """A durable pull consumer on a JetStream stream (both created if missing).

    ``read(n)`` returns up to ``n`` messages, or ``[]`` once ``idle_timeout``
    seconds pass with none (or ``max_messages`` were returned). ``ack`` acks
    exactly the given records. A message not acked within ``ack_wait`` seconds
    is redelivered; ``close`` naks the ones still in flight so they come back
    at once. nats-py runs on a private event loop owned by this object: call
    it from a thread with no running event loop.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        subject: str,
        durable: str = "dataops-ingest",
        *,
        idle_timeout: float = 2.0,
        max_messages: int | None = None,
        ack_wait: float = 30.0,
        connect_timeout: float = 5.0,
        reconnect_attempts: int = 60,
    ) -> None:
        super().__init__(idle_timeout, max_messages)
        if not ack_wait > 0:
            raise InputError(f"ack_wait must be > 0 seconds, got {ack_wait}")
        self.uri = f"{redact_url(url).rstrip('/')}/{stream}/{subject}"
        self.stream, self.subject, self.durable = stream, subject, durable
        self._url = url
        self._inflight: dict[int, Msg] = {}
        _no_running_loop(self.uri)
        self._loop = asyncio.new_event_loop()
        try:
            self._nc, self._sub = self._run(self._open(connect_timeout, reconnect_attempts, ack_wait))
        except BaseException:
            _shutdown_loop(self._loop)
            raise
        self._closed = False

    async def _open(
        self, connect_timeout: float, reconnect_attempts: int, ack_wait: float
    ) -> tuple[NatsClient, JetStreamContext.PullSubscription]:
        nc = await _nats_connect(self._url, connect_timeout, reconnect_attempts)
        try:
            js = nc.jetstream()
            await _ensure_stream(js, self.stream, self.subject)
            # ConsumerConfig's defaults are explicit acks and delivery of the whole stream.
            config = ConsumerConfig(durable_name=self.durable, ack_wait=ack_wait, filter_subject=self.subject)
            try:
                current = (await js.consumer_info(self.stream, self.durable)).config
                stale = current.ack_wait != ack_wait or current.filter_subject != self.subject
            except nats.js.errors.NotFoundError:
                stale = True
            if stale:
                await js.add_consumer(self.stream, config)  # creates, or updates ack_wait / filter
            sub = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        except (TimeoutError, nats.errors.Error) as exc:
            await nc.close()
            raise StorageError(
                f"NATS JetStream at {redact_url(self._url)}: cannot open stream {self.stream!r} "
                f"consumer {self.durable!r}: {_reason(exc)}"
            ) from None
        return nc, sub

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coro`` on this source's private loop."""
        try:
            _no_running_loop(self.uri)
        except PipelineError:
            coro.close()
            raise
        return self._loop.run_until_complete(coro)

    def read(self, n: int) -> list[SourceRecord]:
        want = self._budget(n)
        if want <= 0:
            return []
        try:
            msgs = self._run(self._sub.fetch(want, timeout=self._idle_timeout))
        except TimeoutError:
            return []
        except nats.errors.Error as exc:
            raise StorageError(f"lost NATS at {redact_url(self._url)}: {_reason(exc)}") from None
        records = []
        for msg in msgs:
            seq = msg.metadata.sequence.stream
            self._inflight[id(msg)] = msg
            records.append(event_record(msg.data, _fixed(f"nats://{self.stream}/{seq}"), ack_token=msg))
        return self._spent(records)

    async def _settle(self, msgs: list[Msg], nak: bool) -> None:
        for msg in msgs:
            await (msg.nak() if nak else msg.ack())
            self._inflight.pop(id(msg), None)
        await self._nc.flush()

    def ack(self, records: Sequence[SourceRecord]) -> None:
        self._budget(0)  # raises once closed
        msgs = [r.ack_token for r in records if id(r.ack_token) in self._inflight]
        if not msgs:
            return
        try:
            self._run(self._settle(msgs, nak=False))
        except (TimeoutError, nats.errors.Error) as exc:
            raise StorageError(
                f"cannot ack {len(msgs)} message(s) on NATS at {redact_url(self._url)}: "
                f"{_reason(exc)} (they will be redelivered)"
            ) from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._inflight:
                self._run(self._settle(list(self._inflight.values()), nak=True))
        except (TimeoutError, nats.errors.Error):
            pass  # redelivered after ack_wait anyway
        finally:
            try:
                self._run(self._nc.close())
            finally:
                _shutdown_loop(self._loop)


def publish_nats(
    url: str, stream: str, subject: str, events: Iterable[EventLike], *, connect_timeout: float = 5.0
) -> list[int]:
    """Publish events (see :func:`encode_event`) to a JetStream subject, creating
    the stream if missing. Returns the stream sequence of each event."""

    async def publish() -> list[int]:
        nc = await _nats_connect(url, connect_timeout, reconnect_attempts=3)
        try:
            js = nc.jetstream()
            await _ensure_stream(js, stream, subject)
            return [(await js.publish(subject, encode_event(e), stream=stream)).seq for e in events]
        except (TimeoutError, nats.errors.Error) as exc:
            raise StorageError(f"cannot publish to {stream!r} on NATS at {redact_url(url)}: {_reason(exc)}") from None
        finally:
            await nc.close()

    _no_running_loop(f"{redact_url(url)}/{stream}")
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(publish())
    finally:
        _shutdown_loop(loop)


# --------------------------------------------------------------------------- Redis


def _redis_client(url: str, connect_timeout: float, socket_timeout: float) -> redis.Redis:
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=socket_timeout)
    except ValueError as exc:
        raise InputError(f"invalid Redis URL {redact_url(url)}: {exc}") from None


class RedisStreamSource(_Stream):
    """A Redis Streams consumer group member. It first re-reads its own pending
    (delivered, never acknowledged) entries, then new ones; the ``event`` field
    holds the JSON event. ``ack`` is XACK. ``read`` returns ``[]`` once
    ``idle_timeout`` seconds pass with no new entry (or ``max_messages`` were
    returned). ``start_id`` is where a newly created group starts ("0": the
    whole stream, "$": only new entries)."""

    def __init__(
        self,
        url: str,
        stream: str,
        group: str = "dataops-ingest",
        consumer: str = "c1",
        *,
        idle_timeout: float = 2.0,
        max_messages: int | None = None,
        start_id: str = "0",
        field: str = "event",
        connect_timeout: float = 5.0,
    ) -> None:
        super().__init__(idle_timeout, max_messages)
        parts = urlsplit(redact_url(url))
        db = parts.path.strip("/")
        query = parts.query or (f"db={db}" if db not in ("", "0") else "")
        self.uri = urlunsplit(parts._replace(path=f"/{stream}", query=query))
        self.stream, self.group, self.consumer = stream, group, consumer
        self._url = url
        self._field = field.encode("utf-8")
        self._block_ms = max(1, int(idle_timeout * 1000))
        self._pending_cursor: str | None = "0"  # None once the pending entries are drained
        self._inflight: set[str] = set()
        self._client = _redis_client(url, connect_timeout, idle_timeout + 10.0)
        try:
            self._client.ping()
            self._client.xgroup_create(stream, group, id=start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                self._client.close()
                raise StorageError(f"Redis at {redact_url(url)}: cannot create group {group!r}: {exc}") from None
        except redis.RedisError as exc:
            self._client.close()
            raise StorageError(f"cannot reach Redis at {redact_url(url)}: {_reason(exc)}") from None
        self._closed = False

    def _records(self, entries: list[Any]) -> list[SourceRecord]:
        records = []
        for raw_id, fields in entries:
            entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            self._inflight.add(entry_id)
            payload = (fields or {}).get(self._field)
            source = f"redis://{self.stream}/{entry_id}"
            if payload is not None:
                records.append(event_record(bytes(payload), _fixed(source), ack_token=entry_id))
                continue
            reason = f"entry has no {self._field.decode()!r} field" if fields else "entry deleted before its ack"
            raw = repr({bytes(k).decode("utf-8", "replace"): v for k, v in (fields or {}).items()}).encode()
            records.append(SourceRecord(source, raw, {INVALID_EVENT_KEY: reason}, ack_token=entry_id))
        return self._spent(records)

    def _xreadgroup(self, cursor: str, count: int, block: int | None) -> list[Any]:
        try:
            resp = self._client.xreadgroup(self.group, self.consumer, {self.stream: cursor}, count=count, block=block)
        except redis.ResponseError as exc:
            raise StorageError(f"Redis stream {self.stream!r} group {self.group!r}: {exc}") from None
        except redis.RedisError as exc:
            raise StorageError(f"lost Redis at {redact_url(self._url)}: {_reason(exc)}") from None
        if not resp:
            return []
        if isinstance(resp, dict):  # RESP3
            value = next(iter(resp.values()))
            return list(value[0] if value and isinstance(value[0], list) else value)
        return list(resp[0][1])

    def read(self, n: int) -> list[SourceRecord]:
        want = self._budget(n)
        if want <= 0:
            return []
        if self._pending_cursor is not None:
            entries = self._xreadgroup(self._pending_cursor, want, None)
            if entries:
                last = entries[-1][0]
                self._pending_cursor = last.decode() if isinstance(last, bytes) else str(last)
                return self._records(entries)
            self._pending_cursor = None
        return self._records(self._xreadgroup(">", want, self._block_ms))

    def ack(self, records: Sequence[SourceRecord]) -> None:
        self._budget(0)  # raises once closed
        ids = [r.ack_token for r in records if isinstance(r.ack_token, str) and r.ack_token in self._inflight]
        if not ids:
            return
        try:
            self._client.xack(self.stream, self.group, *ids)
        except redis.RedisError as exc:
            raise StorageError(
                f"cannot ack {len(ids)} entr(ies) on Redis at {redact_url(self._url)}: "
                f"{_reason(exc)} (they will be redelivered)"
            ) from None
        self._inflight.difference_update(ids)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._client.close()


def publish_redis(
    url: str, stream: str, events: Iterable[EventLike], *, field: str = "event", connect_timeout: float = 5.0
) -> list[str]:
    """Append events (see :func:`encode_event`) to a Redis stream; returns the entry ids."""
    client = _redis_client(url, connect_timeout, connect_timeout + 10.0)
    try:
        pipe = client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(stream, {field: encode_event(event)})
        ids = pipe.execute()
    except redis.RedisError as exc:
        raise StorageError(f"cannot publish to Redis at {redact_url(url)}: {_reason(exc)}") from None
    finally:
        client.close()
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
