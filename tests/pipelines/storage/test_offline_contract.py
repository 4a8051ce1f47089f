"""One contract for :class:`OfflineStore`: a SQLite catalog always, a PostgreSQL
catalog when reachable.

``tests/integration/test_offline_postgres.py`` runs the same contract against
PostgreSQL under the ``integration`` marker.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import pyarrow as pa
import pytest

from app.errors import InputError, NotFoundError, StorageError
from pipelines.storage import OfflineStore
from tests.conftest import PG_URL, reachable

StoreFactory = Callable[[], OfflineStore]

SCHEMA = pa.schema([pa.field("sample_id", pa.string(), nullable=False), pa.field("score", pa.float64())])


def rows(*pairs: tuple[str, float | None]) -> pa.Table:
    return pa.table(
        {"sample_id": [p[0] for p in pairs], "score": [p[1] for p in pairs]},
        schema=pa.schema([("sample_id", pa.string()), ("score", pa.float64())]),
    )


def ids(table: pa.Table) -> list[str]:
    return sorted(table.column("sample_id").to_pylist())


def postgres_url() -> str | None:
    """PG_URL if a server answers there (trying user root when postgres is refused)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = make_url(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    if not reachable(url.host or "127.0.0.1", url.port or 5432):
        return None
    for user in dict.fromkeys([url.username, "postgres", "root"]):
        candidate = url.set(username=user)
        engine = create_engine(candidate)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return candidate.render_as_string(hide_password=False)
        except SQLAlchemyError:
            continue
        finally:
            engine.dispose()
    return None


@contextmanager
def sqlite_factory(tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[OfflineStore] = []

    def make() -> OfflineStore:
        opened.append(OfflineStore(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path / "warehouse"))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@contextmanager
def postgres_factory(tmp_path: Path) -> Iterator[StoreFactory]:
    """Stores on a PostgreSQL catalog in a namespace of their own, dropped afterwards."""
    url = postgres_url()
    if url is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    namespace = f"test_{uuid.uuid4().hex[:12]}"
    opened: list[OfflineStore] = []

    def make() -> OfflineStore:
        opened.append(OfflineStore(url, tmp_path / "warehouse", namespace=namespace))
        return opened[-1]

    yield make
    cleaner = OfflineStore(url, tmp_path / "warehouse", namespace=namespace)
    for name in cleaner.tables():
        cleaner.drop(name, purge=True)
    cleaner.close()
    for store in opened:
        store.close()
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import NoSuchNamespaceError

    catalog = SqlCatalog("dataops", uri=url, warehouse=(tmp_path / "warehouse").as_uri())
    try:
        catalog.drop_namespace(namespace)
    except NoSuchNamespaceError:
        pass
    finally:
        catalog.close()


class OfflineStoreContract:
    """Every offline store backend passes these.

    Subclasses provide ``store_factory``: a callable opening a store on the
    same catalog and namespace each time it is called.
    """

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> OfflineStore:
        store = store_factory()
        store.ensure_table("samples", SCHEMA)
        return store

    def test_ensure_table_is_idempotent_and_listed(self, store: OfflineStore) -> None:
        store.ensure_table("samples", SCHEMA)
        store.ensure_table("labels", SCHEMA)
        assert store.tables() == ["labels", "samples"]
        assert store.current_snapshot_id("samples") is None
        assert store.snapshots("samples") == []
        assert store.scan("samples").num_rows == 0

    def test_append_then_scan(self, store: OfflineStore) -> None:
        snapshot_id = store.append("samples", rows(("a", 1.0), ("b", None)), run_id="run-1")
        assert store.current_snapshot_id("samples") == snapshot_id
        table = store.scan("samples")
        assert ids(table) == ["a", "b"]
        assert store.scan("samples", columns=["score"]).column_names == ["score"]

    def test_append_is_idempotent_by_run_id(self, store: OfflineStore) -> None:
        first = store.append("samples", rows(("a", 1.0)), run_id="run-1")
        again = store.append("samples", rows(("a", 1.0)), run_id="run-1")
        assert again == first
        assert len(store.snapshots("samples")) == 1
        assert store.scan("samples").num_rows == 1

    def test_crash_after_commit_does_not_duplicate(self, store_factory: StoreFactory, store: OfflineStore) -> None:
        # The first process committed, then died before recording the snapshot id.
        committed = store.append("samples", rows(("a", 1.0), ("b", 2.0)), run_id="run-7")
        store.close()
        resumed = store_factory()
        assert resumed.append("samples", rows(("a", 1.0), ("b", 2.0)), run_id="run-7") == committed
        assert resumed.find_run("samples", "run-7") == committed
        assert resumed.find_run("samples", "run-8") is None
        assert resumed.scan("samples").num_rows == 2

    def test_concurrent_appends_keep_one_snapshot_per_run(
        self, store_factory: StoreFactory, store: OfflineStore
    ) -> None:
        jobs = [(f"run-{i}", f"s{i}") for i in range(4)] + [("run-same", f"dup{i}") for i in range(4)]
        results: list[int] = []
        errors: list[BaseException] = []

        def work(run_id: str, sample: str) -> None:
            try:
                results.append(store_factory().append("samples", rows((sample, 1.0)), run_id=run_id))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(results) == 8 and len(set(results)) == 5
        snaps = store.snapshots("samples")
        assert sorted(s.run_id or "" for s in snaps) == ["run-0", "run-1", "run-2", "run-3", "run-same"]
        assert store.scan("samples").num_rows == 5

    def test_snapshot_listing(self, store: OfflineStore) -> None:
        s1 = store.append("samples", rows(("a", 1.0), ("b", 2.0)), run_id="run-1")
        s2 = store.append("samples", rows(("c", 3.0)), run_id="run-2")
        snaps = store.snapshots("samples")
        assert [s.snapshot_id for s in snaps] == [s1, s2]
        assert [s.run_id for s in snaps] == ["run-1", "run-2"]
        assert [s.added_rows for s in snaps] == [2, 1]
        assert [s.operation for s in snaps] == ["append", "append"]
        assert snaps[0].parent_id is None and snaps[1].parent_id == s1
        assert snaps[0].timestamp.tzinfo is UTC
        assert snaps[0].timestamp <= snaps[1].timestamp

    def test_rollback_then_scan_shows_old_rows(self, store: OfflineStore) -> None:
        s1 = store.append("samples", rows(("a", 1.0)), run_id="run-1")
        s2 = store.append("samples", rows(("bad", -1.0)), run_id="run-2")
        assert store.rollback("samples", s1) == s2
        assert store.current_snapshot_id("samples") == s1
        assert ids(store.scan("samples")) == ["a"]
        # The rolled-back snapshot is still listed, and scannable by id.
        assert [s.snapshot_id for s in store.snapshots("samples")] == [s1, s2]
        assert ids(store.scan("samples", snapshot_id=s2)) == ["a", "bad"]

    def test_rolled_back_run_is_not_reapplied(self, store: OfflineStore) -> None:
        s1 = store.append("samples", rows(("a", 1.0)), run_id="run-1")
        s2 = store.append("samples", rows(("bad", -1.0)), run_id="run-2")
        store.rollback("samples", s1)
        assert store.append("samples", rows(("bad", -1.0)), run_id="run-2") == s2
        assert ids(store.scan("samples")) == ["a"]
        # A new run appends on top of the rolled-back state.
        s3 = store.append("samples", rows(("c", 3.0)), run_id="run-3")
        assert store.snapshots("samples")[-1].parent_id == s1
        assert ids(store.scan("samples")) == ["a", "c"]
        assert s3 == store.current_snapshot_id("samples")

    def test_rollback_can_be_undone(self, store: OfflineStore) -> None:
        s1 = store.append("samples", rows(("a", 1.0)), run_id="run-1")
        s2 = store.append("samples", rows(("b", 2.0)), run_id="run-2")
        previous = store.rollback("samples", s1)
        assert store.rollback("samples", previous) == s1  # type: ignore[arg-type]
        assert store.current_snapshot_id("samples") == s2
        assert store.rollback("samples", s2) == s2

    def test_schema_union_on_extra_columns(self, store: OfflineStore) -> None:
        s1 = store.append("samples", rows(("a", 1.0)), run_id="run-1")
        wider = pa.table({"sample_id": ["b"], "score": [2.0], "caption": ["a dog"]})
        store.append("samples", wider, run_id="run-2")
        assert store.schema("samples").names == ["sample_id", "score", "caption"]
        # Existing columns keep their nullability.
        assert not store.schema("samples").field("sample_id").nullable
        table = store.scan("samples").sort_by("sample_id")
        assert table.column("caption").to_pylist() == [None, "a dog"]
        # An old snapshot reads with the schema it was written with.
        assert store.scan("samples", snapshot_id=s1).column_names == ["sample_id", "score"]

    def test_ensure_table_adds_missing_columns(self, store: OfflineStore) -> None:
        store.ensure_table("samples", SCHEMA.append(pa.field("width", pa.int32())))
        assert store.schema("samples").names == ["sample_id", "score", "width"]

    def test_rows_are_conformed_to_the_table(self, store: OfflineStore) -> None:
        # Column order does not matter, missing optional columns become nulls,
        # and safe casts are applied.
        narrow = pa.table({"sample_id": ["a", "b"]})
        store.append("samples", narrow, run_id="run-1")
        reordered = pa.table({"score": pa.array([1], pa.int32()), "sample_id": ["c"]})
        store.append("samples", reordered, run_id="run-2")
        table = store.scan("samples").sort_by("sample_id")
        assert table.column("score").to_pylist() == [None, None, 1.0]

    def test_rows_that_cannot_fit_are_input_errors(self, store: OfflineStore) -> None:
        with pytest.raises(InputError, match="sample_id"):
            store.append("samples", pa.table({"score": [1.0]}), run_id="run-1")
        with pytest.raises(InputError, match="nulls"):
            store.append("samples", rows((None, 1.0)), run_id="run-1")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="score"):
            store.append("samples", pa.table({"sample_id": ["a"], "score": ["high"]}), run_id="run-1")
        with pytest.raises(InputError):
            store.append("samples", rows(("a", 1.0)), run_id="")
        assert store.snapshots("samples") == []

    def test_empty_append_records_the_run(self, store: OfflineStore) -> None:
        snapshot_id = store.append("samples", rows(), run_id="run-empty")
        assert store.append("samples", rows(), run_id="run-empty") == snapshot_id
        assert store.scan("samples").num_rows == 0

    def test_unknown_table_raises_not_found(self, store: OfflineStore) -> None:
        for call in (
            lambda: store.scan("nope"),
            lambda: store.append("nope", rows(("a", 1.0)), run_id="r"),
            lambda: store.snapshots("nope"),
            lambda: store.current_snapshot_id("nope"),
            lambda: store.rollback("nope", 1),
            lambda: store.drop("nope"),
        ):
            with pytest.raises(NotFoundError, match="nope"):
                call()

    def test_unknown_snapshot_or_column_raises_not_found(self, store: OfflineStore) -> None:
        store.append("samples", rows(("a", 1.0)), run_id="run-1")
        with pytest.raises(NotFoundError):
            store.rollback("samples", 12345)
        with pytest.raises(NotFoundError):
            store.scan("samples", snapshot_id=12345)
        with pytest.raises(NotFoundError, match="colour"):
            store.scan("samples", columns=["colour"])

    def test_drop(self, store: OfflineStore) -> None:
        store.append("samples", rows(("a", 1.0)), run_id="run-1")
        store.ensure_table("scratch", SCHEMA)
        store.drop("scratch")
        store.drop("samples", purge=True)
        assert store.tables() == []
        with pytest.raises(NotFoundError):
            store.scan("samples")

    def test_invalid_names_are_input_errors(self, store: OfflineStore) -> None:
        for name in ["", "a.b", "a/b", "x" * 200]:
            with pytest.raises(InputError):
                store.scan(name)

    def test_columns_must_be_a_sequence_of_names(self, store: OfflineStore) -> None:
        with pytest.raises(InputError):
            store.scan("samples", columns="score")


# Backends ---------------------------------------------------------------
@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=[pytest.mark.integration]),
    ]
)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    if request.param == "sqlite":
        with sqlite_factory(tmp_path) as make:
            yield make
    else:
        with postgres_factory(tmp_path) as make:
            yield make


class TestOfflineStore(OfflineStoreContract):
    pass


def test_table_created_elsewhere_is_appended_once_per_run(tmp_path: Path) -> None:
    from pyiceberg.catalog.sql import SqlCatalog

    url = f"sqlite:///{tmp_path / 'c.db'}"
    catalog = SqlCatalog("dataops", uri=url, warehouse=(tmp_path / "wh").as_uri())
    catalog.create_namespace("dataops")
    catalog.create_table(("dataops", "external"), schema=SCHEMA)
    catalog.close()
    with OfflineStore(url, tmp_path / "wh") as store:
        first = store.append("external", rows(("a", 1.0)), run_id="run-1")
        assert store.append("external", rows(("a", 1.0)), run_id="run-1") == first
        assert [s.run_id for s in store.snapshots("external")] == ["run-1"]


def test_empty_namespace_lists_no_tables(tmp_path: Path) -> None:
    with OfflineStore(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "wh", namespace="fresh") as store:
        assert store.tables() == []


def test_unreachable_catalog_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="catalog") as info:
        OfflineStore("postgresql://nobody:secret@127.0.0.1:1/none", tmp_path / "wh")
    assert "secret" not in str(info.value)
