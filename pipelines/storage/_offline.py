"""The offline store: Iceberg tables behind pyiceberg's SQL catalog.

Every append is one snapshot tagged with the run that wrote it
(``dataops.run_id``), which makes appends idempotent per run and lets a bad
run be rolled back by moving the table's current snapshot.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from app.errors import DataOpsError, InputError, NotFoundError, StorageError

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

__all__ = ["OfflineStore", "SnapshotInfo", "RUN_ID_PROPERTY"]

RUN_ID_PROPERTY = "dataops.run_id"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$")
_COMMIT_ATTEMPTS = 10
# pyiceberg retries a conflicting commit by re-applying the append on top of
# the winner, which would skip our run_id check and duplicate a run. Our tables
# turn that off; append() retries itself and re-checks the run each time.
_NO_LIBRARY_RETRIES = {"commit.retry.num-retries": "0"}


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of an offline table, oldest first in :meth:`OfflineStore.snapshots`."""

    snapshot_id: int
    parent_id: int | None
    timestamp: datetime
    run_id: str | None
    added_rows: int
    operation: str


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"invalid {kind} name {name!r}: use 1-128 letters, digits, '_' or '-' (no dots or slashes)")
    return name


def _normalise_catalog_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _redact(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only used to build an error message
        return url.split("@", 1)[-1] if "@" in url else url


def _warehouse_uri(warehouse: Path | str) -> str:
    if isinstance(warehouse, str) and "://" in warehouse:
        return warehouse
    path = Path(warehouse).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create warehouse folder {path}: {exc}") from exc
    return path.as_uri()


@contextmanager
def _translate(what: str, missing: str | None = None) -> Iterator[None]:
    """Turn pyiceberg, SQLAlchemy and I/O errors into our own tree.

    ``what`` starts the message of a StorageError, ``missing`` is the whole
    message of a NotFoundError (default: ``what`` plus the library's words).
    """
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except DataOpsError:
        raise
    except (NoSuchTableError, NoSuchNamespaceError) as exc:
        raise NotFoundError(missing or f"{what}: {exc}") from exc
    except (SQLAlchemyError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StorageError(f"{what}: {first}") from exc
    except Exception as exc:  # pyiceberg raises plain Exception subclasses
        if type(exc).__module__.startswith("pyiceberg"):
            raise StorageError(f"{what}: {type(exc).__name__}: {exc}") from exc
        raise


def _snapshot_info(snapshot: Any) -> SnapshotInfo:
    summary = snapshot.summary
    operation = "unknown"
    run_id: str | None = None
    added = 0
    if summary is not None:
        operation = str(getattr(summary.operation, "value", summary.operation))
        run_id = summary.additional_properties.get(RUN_ID_PROPERTY)
        added = int(summary.additional_properties.get("added-records", 0) or 0)
    return SnapshotInfo(
        snapshot_id=int(snapshot.snapshot_id),
        parent_id=None if snapshot.parent_snapshot_id is None else int(snapshot.parent_snapshot_id),
        timestamp=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
        run_id=run_id,
        added_rows=added,
        operation=operation,
    )


def _conform(rows: pa.Table, target: pa.Schema, table_name: str) -> pa.Table:
    """Reorder, cast and null-fill ``rows`` to the table's Arrow schema."""
    arrays: list[pa.ChunkedArray] = []
    for field in target:
        if field.name not in rows.column_names:
            if not field.nullable:
                raise InputError(f"rows for table {table_name!r} lack required column {field.name!r}")
            arrays.append(pa.chunked_array([pa.nulls(rows.num_rows, type=field.type)], type=field.type))
            continue
        column = rows.column(field.name)
        if not field.nullable and column.null_count:
            raise InputError(f"column {field.name!r} of table {table_name!r} is required but has nulls")
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(
                    f"column {field.name!r} of table {table_name!r} is {field.type}; "
                    f"cannot convert {column.type}: {exc}"
                ) from exc
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=target)


class OfflineStore:
    """Iceberg tables in one namespace of a SQL catalog.

    ``catalog_url`` is a SQLAlchemy URL (``sqlite:///…``, ``postgresql+psycopg://…``;
    plain ``postgresql://`` is accepted), ``warehouse`` a folder or a URL
    (``s3://…``) where data and metadata files go.
    """

    def __init__(
        self,
        catalog_url: str,
        warehouse: Path | str,
        namespace: str = "dataops",
        *,
        catalog_name: str = "dataops",
    ) -> None:
        self.namespace = _check_name("namespace", namespace)
        self.catalog_url = _normalise_catalog_url(catalog_url)
        self.warehouse = _warehouse_uri(warehouse)
        from pyiceberg.catalog.sql import SqlCatalog

        with _translate(f"cannot open Iceberg catalog {_redact(self.catalog_url)}"):
            self._catalog: SqlCatalog = SqlCatalog(catalog_name, uri=self.catalog_url, warehouse=self.warehouse)

    def __repr__(self) -> str:
        return f"OfflineStore({_redact(self.catalog_url)!r}, namespace={self.namespace!r})"

    def __enter__(self) -> OfflineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the catalog's database connections."""
        self._catalog.close()

    # Helpers -----------------------------------------------------------
    def _ident(self, name: str) -> tuple[str, str]:
        return (self.namespace, _check_name("table", name))

    def _missing(self, name: str) -> str:
        return f"no offline table {name!r} in namespace {self.namespace!r}"

    def _load(self, name: str) -> Table:
        ident = self._ident(name)
        with _translate(f"cannot load offline table {name!r}", self._missing(name)):
            return self._catalog.load_table(ident)

    # Tables ------------------------------------------------------------
    def ensure_table(self, name: str, schema: pa.Schema) -> None:
        """Create the table if absent; if present, add any columns ``schema`` has
        that it lacks (as nullable). Existing columns are never changed."""
        ident = self._ident(name)
        if not isinstance(schema, pa.Schema) or len(schema) == 0:
            raise InputError(f"table {name!r} needs a non-empty pyarrow schema")
        with _translate(f"cannot create offline table {name!r}"):
            self._catalog.create_namespace_if_not_exists(self.namespace)
            table = self._catalog.create_table_if_not_exists(ident, schema=schema, properties=dict(_NO_LIBRARY_RETRIES))
            self._own_retries(table)
            self._union_schema(table, schema)

    @staticmethod
    def _own_retries(table: Table) -> bool:
        """Turn off pyiceberg's commit retries on ``table``; True if that took a commit."""
        properties = table.metadata.properties
        if all(properties.get(k) == v for k, v in _NO_LIBRARY_RETRIES.items()):
            return False
        with table.transaction() as tx:
            tx.set_properties(_NO_LIBRARY_RETRIES)
        return True

    @staticmethod
    def _new_fields(table: Table, schema: pa.Schema) -> list[pa.Field]:
        known = set(table.schema().as_arrow().names)
        return [field.with_nullable(True) for field in schema if field.name not in known]

    def _union_schema(self, table: Table, schema: pa.Schema) -> bool:
        new = self._new_fields(table, schema)
        if not new:
            return False
        current = table.schema().as_arrow()
        with table.update_schema() as update:
            update.union_by_name(pa.schema(list(current) + new))
        return True

    def tables(self) -> list[str]:
        """Names of the tables in this store's namespace, sorted."""
        from pyiceberg.exceptions import NoSuchNamespaceError

        with _translate("cannot list offline tables"):
            try:
                idents = self._catalog.list_tables(self.namespace)
            except NoSuchNamespaceError:
                return []
        return sorted(ident[-1] for ident in idents)

    def drop(self, name: str, *, purge: bool = False) -> None:
        """Drop a table from the catalog; with ``purge`` also delete its files."""
        ident = self._ident(name)
        with _translate(f"cannot drop offline table {name!r}", self._missing(name)):
            if purge:
                self._catalog.purge_table(ident)
            else:
                self._catalog.drop_table(ident)

    # Writes ------------------------------------------------------------
    def append(self, name: str, rows: pa.Table, *, run_id: str) -> int:
        """Append ``rows`` as one snapshot tagged with ``run_id``; return its id.

        Idempotent per run: if any snapshot of the table already carries
        ``run_id`` (including one a later rollback moved away from), its id is
        returned and nothing is written. Columns the table lacks are added
        (nullable); columns the rows lack are filled with nulls.
        """
        if not isinstance(run_id, str) or not run_id.strip():
            raise InputError("append needs a non-empty run_id")
        if not isinstance(rows, pa.Table):
            raise InputError(f"rows must be a pyarrow.Table, not {type(rows).__name__}")
        from pyiceberg.exceptions import CommitFailedException

        last: Exception | None = None
        for attempt in range(_COMMIT_ATTEMPTS):
            table = self._load(name)
            existing = self._find_run(table, run_id)
            if existing is not None:
                return existing
            try:
                with _translate(f"cannot append to offline table {name!r}", self._missing(name)):
                    if self._own_retries(table):
                        continue  # the table changed; load it again
                    return self._append_once(table, name, rows, run_id)
            except StorageError as exc:
                # Another writer committed first: reload and check the run again.
                if isinstance(exc.__cause__, CommitFailedException):
                    last = exc
                    time.sleep(min(0.05 * 2**attempt, 1.0) * random.uniform(0.5, 1.5))
                    continue
                raise
        raise StorageError(f"cannot append to offline table {name!r}: concurrent commits kept winning ({last})")

    def _append_once(self, table: Table, name: str, rows: pa.Table, run_id: str) -> int:
        with table.transaction() as tx:
            new = self._new_fields(table, rows.schema)
            if new:
                current = table.schema().as_arrow()
                with tx.update_schema() as update:
                    update.union_by_name(pa.schema(list(current) + new))
            target = tx.table_metadata.schema().as_arrow()
            tx.append(_conform(rows, target, name), snapshot_properties={RUN_ID_PROPERTY: run_id})
        snapshot = table.current_snapshot()
        if snapshot is None:  # pragma: no cover - a committed append always has one
            raise StorageError(f"append to offline table {name!r} left no current snapshot")
        return int(snapshot.snapshot_id)

    @staticmethod
    def _find_run(table: Table, run_id: str) -> int | None:
        for snapshot in table.snapshots():
            summary = snapshot.summary
            if summary is not None and summary.additional_properties.get(RUN_ID_PROPERTY) == run_id:
                return int(snapshot.snapshot_id)
        return None

    def find_run(self, name: str, run_id: str) -> int | None:
        """The id of the snapshot ``run_id`` appended, or None."""
        return self._find_run(self._load(name), run_id)

    def rollback(self, name: str, snapshot_id: int) -> int | None:
        """Make ``snapshot_id`` the table's current snapshot; return the previous one.

        Any snapshot the table still holds may be named, so calling ``rollback``
        with the returned id undoes a rollback. The schema is not rolled back.
        """
        table = self._load(name)
        if table.snapshot_by_id(snapshot_id) is None:
            raise NotFoundError(f"offline table {name!r} has no snapshot {snapshot_id}")
        current = table.current_snapshot()
        previous = None if current is None else int(current.snapshot_id)
        if previous == snapshot_id:
            return previous
        with _translate(f"cannot roll back offline table {name!r} to snapshot {snapshot_id}"):
            table.manage_snapshots().set_current_snapshot(snapshot_id=snapshot_id).commit()
        return previous

    # Reads -------------------------------------------------------------
    def snapshots(self, name: str) -> list[SnapshotInfo]:
        """Every snapshot the table holds, oldest first."""
        table = self._load(name)
        return [_snapshot_info(s) for s in table.snapshots()]

    def current_snapshot_id(self, name: str) -> int | None:
        snapshot = self._load(name).current_snapshot()
        return None if snapshot is None else int(snapshot.snapshot_id)

    def schema(self, name: str) -> pa.Schema:
        """The table's current schema as Arrow."""
        return self._load(name).schema().as_arrow()

    def scan(self, name: str, snapshot_id: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Read the table at its current snapshot (or ``snapshot_id``).

        An older snapshot is read with the schema it was written with.
        """
        table = self._load(name)
        schema = table.schema()
        if snapshot_id is not None:
            snapshot = table.snapshot_by_id(snapshot_id)
            if snapshot is None:
                raise NotFoundError(f"offline table {name!r} has no snapshot {snapshot_id}")
            if snapshot.schema_id is not None:
                schema = table.schemas().get(snapshot.schema_id, schema)
        if isinstance(columns, str):
            raise InputError("columns must be a sequence of names, not a string")
        if columns is not None:
            missing = [c for c in columns if c not in schema.as_arrow().names]
            if missing:
                raise NotFoundError(f"offline table {name!r} has no column(s) {', '.join(map(repr, missing))}")
        selected = tuple(columns) if columns is not None else ("*",)
        with _translate(f"cannot scan offline table {name!r}"):
            return table.scan(selected_fields=selected, snapshot_id=snapshot_id).to_arrow()
