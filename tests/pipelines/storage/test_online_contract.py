"""One contract for :class:`OnlineStore`: SQLite always, Redis when reachable.

``tests/integration/test_online_redis.py`` runs the same contract against Redis
under the ``integration`` marker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from app.errors import ConfigError, InputError, StorageError
from pipelines.storage import (
    OnlineStore,
    RedisOnlineStore,
    SqliteOnlineStore,
    open_online_store,
)
from tests.conftest import REDIS_URL, reachable

StoreFactory = Callable[[], OnlineStore]


def redis_reachable() -> bool:
    parts = urlsplit(REDIS_URL)
    return reachable(parts.hostname or "127.0.0.1", parts.port or 6379)


@contextmanager
def sqlite_factory(tmp_path: Path) -> Iterator[StoreFactory]:
    url = f"sqlite:///{tmp_path / 'online.db'}"
    opened: list[OnlineStore] = []

    def make() -> OnlineStore:
        opened.append(SqliteOnlineStore(url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@contextmanager
def redis_factory() -> Iterator[StoreFactory]:
    """Stores sharing one unique key prefix, deleted afterwards."""
    if not redis_reachable():
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    prefix = f"dataops-test-{uuid.uuid4().hex}:"
    opened: list[RedisOnlineStore] = []

    def make() -> OnlineStore:
        opened.append(RedisOnlineStore(REDIS_URL, key_prefix=prefix))
        return opened[-1]

    yield make
    for store in opened:
        store.close()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


class OnlineStoreContract:
    """Every online store backend passes these.

    Subclasses provide ``store_factory``: a callable opening a store on the
    same backend and data each time it is called.
    """

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> OnlineStore:
        return store_factory()

    def test_put_then_get(self, store: OnlineStore) -> None:
        store.put_many({"ds/1": {"label": "cat", "score": 0.9}, "ds/2": {"label": "dog"}})
        assert store.get("ds/1") == {"label": "cat", "score": 0.9}
        assert store.get("ds/2") == {"label": "dog"}
        assert store.get("ds/3") is None

    def test_put_upserts(self, store: OnlineStore) -> None:
        store.put_many({"ds/1": {"v": 1}})
        store.put_many({"ds/1": {"v": 2, "extra": [1, 2]}})
        assert store.get("ds/1") == {"v": 2, "extra": [1, 2]}
        assert store.count() == 1

    def test_put_single(self, store: OnlineStore) -> None:
        store.put("ds/x", {"nested": {"a": [1, None, "é"]}})
        assert store.get("ds/x") == {"nested": {"a": [1, None, "é"]}}

    def test_get_many_leaves_out_absent_keys(self, store: OnlineStore) -> None:
        store.put_many({f"ds/{i}": {"i": i} for i in range(5)})
        got = store.get_many(["ds/4", "ds/missing", "ds/0", "ds/4"])
        assert got == {"ds/4": {"i": 4}, "ds/0": {"i": 0}}
        assert list(got) == ["ds/4", "ds/0"]
        assert store.get_many([]) == {}

    def test_large_batches(self, store: OnlineStore) -> None:
        items = {f"big/{i:05d}": {"i": i} for i in range(1500)}
        store.put_many(items)
        assert store.count("big/") == 1500
        got = store.get_many(items)
        assert len(got) == 1500 and got["big/01499"] == {"i": 1499}

    def test_delete(self, store: OnlineStore) -> None:
        store.put_many({"ds/1": {"v": 1}})
        assert store.delete("ds/1") is True
        assert store.delete("ds/1") is False
        assert store.get("ds/1") is None

    def test_count_by_prefix(self, store: OnlineStore) -> None:
        store.put_many({"ds1/a": {}, "ds1/b": {}, "ds10/a": {}, "other/a": {}})
        assert store.count() == 4
        assert store.count("ds1/") == 2
        assert store.count("ds1") == 3
        assert store.count("nothing/") == 0

    def test_count_prefix_is_literal(self, store: OnlineStore) -> None:
        store.put_many({"d*s/1": {}, "dxs/1": {}, "d?/1": {}, "d[x]/1": {}})
        assert store.count("d*") == 1
        assert store.count("d?") == 1
        assert store.count("d[") == 1
        assert store.count("d") == 4

    def test_values_survive_reopening(self, store_factory: StoreFactory) -> None:
        first = store_factory()
        first.put_many({"ds/1": {"kept": True}})
        first.close()
        second = store_factory()
        assert second.get("ds/1") == {"kept": True}
        assert second.count() == 1

    def test_bad_batch_writes_nothing(self, store: OnlineStore) -> None:
        with pytest.raises(InputError):
            store.put_many({"ds/1": {"ok": 1}, "ds/2": {"bad": object()}})
        with pytest.raises(InputError):
            store.put_many({"ds/1": {"ok": 1}, "no-slash": {"ok": 2}})
        assert store.count() == 0

    def test_invalid_keys_and_values(self, store: OnlineStore) -> None:
        for key in ["", "ds", "/1", "ds/"]:
            with pytest.raises(InputError):
                store.get(key)
        with pytest.raises(InputError):
            store.put_many({"ds/1": ["not", "an", "object"]})  # type: ignore[dict-item]
        with pytest.raises(InputError):
            store.put_many({"ds/1": {"nan": float("nan")}})
        with pytest.raises(InputError):
            store.get_many("ds/1")

    def test_close_twice_is_safe(self, store: OnlineStore) -> None:
        store.close()
        store.close()


# Backends ---------------------------------------------------------------
@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=[pytest.mark.integration]),
    ]
)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    if request.param == "sqlite":
        with sqlite_factory(tmp_path) as make:
            yield make
    else:
        with redis_factory() as make:
            yield make


class TestOnlineStore(OnlineStoreContract):
    pass


def test_open_online_store_picks_by_scheme(tmp_path: Path) -> None:
    sqlite_store = open_online_store(f"sqlite:///{tmp_path / 'a' / 'online.db'}")
    assert isinstance(sqlite_store, SqliteOnlineStore)
    sqlite_store.close()
    bare = open_online_store(str(tmp_path / "bare.db"))
    assert isinstance(bare, SqliteOnlineStore)
    bare.close()
    # Building a Redis store does no I/O, so this needs no server.
    redis_store = open_online_store("redis://127.0.0.1:1/0")
    assert isinstance(redis_store, RedisOnlineStore)
    redis_store.close()


@pytest.mark.parametrize("url", ["postgresql://x/y", "mongodb://h/db", ""])
def test_open_online_store_rejects_unknown_schemes(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_online_store(url)
    assert "\n" not in str(info.value)


def test_unreachable_redis_is_a_storage_error() -> None:
    store = RedisOnlineStore("redis://127.0.0.1:1/0")
    with pytest.raises(StorageError, match="127.0.0.1:1"):
        store.get("ds/1")
    store.close()


def test_sqlite_in_memory(tmp_path: Path) -> None:
    store = SqliteOnlineStore("sqlite:///:memory:")
    store.put_many({"ds/1": {"v": 1}})
    assert store.get("ds/1") == {"v": 1}
    store.close()
