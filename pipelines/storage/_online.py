"""The online store: latest features per sample, looked up by key.

Keys are ``"<dataset>/<sample_id>"``, values JSON objects. Two backends share
one interface: SQLite (embedded default) and Redis.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.errors import ConfigError, InputError, StorageError

__all__ = ["OnlineStore", "SqliteOnlineStore", "RedisOnlineStore", "open_online_store"]

Value = dict[str, Any]


def _check_key(key: str) -> str:
    if not isinstance(key, str):
        raise InputError(f"online store key must be a string, not {type(key).__name__}")
    dataset, sep, sample_id = key.partition("/")
    if not sep or not dataset or not sample_id:
        raise InputError(f"online store key {key!r} must look like '<dataset>/<sample_id>'")
    return key


def _encode(key: str, value: Mapping[str, Any]) -> str:
    if not isinstance(value, Mapping):
        raise InputError(f"value for {key!r} must be a JSON object (dict), not {type(value).__name__}")
    try:
        return json.dumps(dict(value), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"value for {key!r} is not JSON-serialisable: {exc}") from exc


def _decode(key: str, raw: str | bytes) -> Value:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise StorageError(f"online store value for {key!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise StorageError(f"online store value for {key!r} is not a JSON object")
    return value


def _keys(keys: Iterable[str]) -> list[str]:
    if isinstance(keys, str):
        raise InputError("keys must be an iterable of keys, not a single string")
    return list(dict.fromkeys(_check_key(k) for k in keys))


class OnlineStore(ABC):
    """Key/value store of JSON objects keyed by ``"<dataset>/<sample_id>"``."""

    @abstractmethod
    def put_many(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        """Upsert every item, all or none."""

    @abstractmethod
    def get(self, key: str) -> Value | None:
        """The value under ``key``, or None."""

    @abstractmethod
    def get_many(self, keys: Iterable[str]) -> dict[str, Value]:
        """The values of those ``keys`` that exist; absent keys are left out."""

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""

    @abstractmethod
    def count(self, prefix: str = "") -> int:
        """How many keys start with ``prefix`` (e.g. ``"dataset/"``)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. Safe to call twice."""

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        self.put_many({key: value})

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# SQLite ----------------------------------------------------------------
def _sqlite_path(path_or_url: str | Path) -> str:
    text = str(path_or_url)
    if text.startswith("sqlite://"):
        if not text.startswith("sqlite:///"):
            raise ConfigError(f"invalid SQLite URL {text!r}: write sqlite:///relative.db or sqlite:////abs.db")
        text = text[len("sqlite:///") :].split("?", 1)[0]
        if not text:
            raise ConfigError("SQLite URL names no file: write sqlite:///path/to/online.db")
    elif "://" in text:
        raise ConfigError(f"not a SQLite path or URL: {text!r}")
    return text


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix``."""
    while prefix:
        last = ord(prefix[-1])
        if last < 0x10FFFF:
            # Skip the surrogate block, which SQLite's UTF-8 text cannot hold.
            return prefix[:-1] + chr(0xE000 if last == 0xD7FF else last + 1)
        prefix = prefix[:-1]
    return None


class SqliteOnlineStore(OnlineStore):
    """One SQLite table ``online(key PRIMARY KEY, value JSON)`` in WAL mode."""

    def __init__(self, path_or_url: str | Path) -> None:
        path = _sqlite_path(path_or_url)
        self.path = path
        self._lock = threading.Lock()
        try:
            if path != ":memory:":
                Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
                path = str(Path(path).expanduser())
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS online ("
                " key TEXT PRIMARY KEY NOT NULL,"
                " value TEXT NOT NULL,"
                " updated_at REAL NOT NULL"
                ") WITHOUT ROWID"
            )
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open SQLite online store {self.path!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({self.path!r})"

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"SQLite online store {self.path!r} is closed")
        return self._conn

    def put_many(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        now = time.time()
        rows = [(_check_key(k), _encode(k, v), now) for k, v in items.items()]
        if not rows:
            return
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.executemany(
                        "INSERT INTO online (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(key)"
                        " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                        rows,
                    )
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot write to SQLite online store {self.path!r}: {exc}") from exc

    def get(self, key: str) -> Value | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Value]:
        wanted = _keys(keys)
        found: dict[str, Value] = {}
        with self._lock:
            db = self._db()
            try:
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    cursor = db.execute(f"SELECT key, value FROM online WHERE key IN ({marks})", chunk)
                    for key, raw in cursor.fetchall():
                        found[key] = _decode(key, raw)
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read SQLite online store {self.path!r}: {exc}") from exc
        return {k: found[k] for k in wanted if k in found}

    def delete(self, key: str) -> bool:
        _check_key(key)
        with self._lock:
            try:
                cursor = self._db().execute("DELETE FROM online WHERE key = ?", (key,))
            except sqlite3.Error as exc:
                raise StorageError(f"cannot delete from SQLite online store {self.path!r}: {exc}") from exc
        return cursor.rowcount > 0

    def count(self, prefix: str = "") -> int:
        upper = _successor(prefix)
        args: tuple[str, ...]
        if not prefix:
            sql, args = "SELECT count(*) FROM online", ()
        elif upper is None:
            sql, args = "SELECT count(*) FROM online WHERE key >= ?", (prefix,)
        else:
            sql, args = "SELECT count(*) FROM online WHERE key >= ? AND key < ?", (prefix, upper)
        with self._lock:
            try:
                row = self._db().execute(sql, args).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"cannot count SQLite online store {self.path!r}: {exc}") from exc
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# Redis -----------------------------------------------------------------
def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisOnlineStore(OnlineStore):
    """JSON strings under ``<key_prefix><key>`` in Redis (default prefix ``dataops:``).

    Batch writes go through one MULTI/EXEC transaction. ``count`` walks the
    keyspace with SCAN, so it costs time proportional to the database size.
    """

    def __init__(self, url: str, *, key_prefix: str = "dataops:", scan_batch: int = 1000) -> None:
        import redis

        self.url = url
        self.key_prefix = key_prefix
        self._scan_batch = scan_batch
        try:
            self._client: Any = redis.Redis.from_url(url)
        except (ValueError, redis.RedisError) as exc:
            raise ConfigError(f"invalid Redis URL {_redact(url)!r}: {exc}") from exc
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)

    def __repr__(self) -> str:
        return f"RedisOnlineStore({_redact(self.url)!r})"

    def _fail(self, what: str, exc: BaseException) -> StorageError:
        return StorageError(f"cannot {what} Redis online store {_redact(self.url)!r}: {exc}")

    def put_many(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        rows = [(self.key_prefix + _check_key(k), _encode(k, v)) for k, v in items.items()]
        if not rows:
            return
        try:
            with self._client.pipeline(transaction=True) as pipe:
                for name, raw in rows:
                    pipe.set(name, raw)
                pipe.execute()
        except self._errors as exc:
            raise self._fail("write to", exc) from exc

    def get(self, key: str) -> Value | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, Value]:
        wanted = _keys(keys)
        if not wanted:
            return {}
        try:
            raws = self._client.mget([self.key_prefix + k for k in wanted])
        except self._errors as exc:
            raise self._fail("read", exc) from exc
        return {k: _decode(k, raw) for k, raw in zip(wanted, raws, strict=True) if raw is not None}

    def delete(self, key: str) -> bool:
        _check_key(key)
        try:
            return bool(self._client.delete(self.key_prefix + key))
        except self._errors as exc:
            raise self._fail("delete from", exc) from exc

    def count(self, prefix: str = "") -> int:
        pattern = _glob_escape(self.key_prefix + prefix) + "*"
        try:
            return sum(1 for _ in self._client.scan_iter(match=pattern, count=self._scan_batch))
        except self._errors as exc:
            raise self._fail("count", exc) from exc

    def close(self) -> None:
        try:
            self._client.close()
        except self._errors:
            pass


def open_online_store(url: str) -> OnlineStore:
    """Open the online store a URL names: ``sqlite:///path`` or ``redis://…``
    (``rediss://``, ``unix://`` too). A bare path means a SQLite file."""
    if not isinstance(url, str) or not url:
        raise ConfigError("online store URL is empty: use sqlite:///path/to/online.db or redis://host:6379/0")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("", "sqlite"):
        return SqliteOnlineStore(url)
    if scheme in ("redis", "rediss", "unix"):
        return RedisOnlineStore(url)
    raise ConfigError(
        f"unsupported online store URL scheme {scheme!r}: use sqlite:///path/to/online.db or redis://host:6379/0"
    )
