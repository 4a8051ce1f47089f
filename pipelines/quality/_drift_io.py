"""Where drift detection gets its frames: pyarrow tables, pandas frames,
Parquet files and Iceberg snapshots of the offline store.

A source spec is a Parquet path (a file or a folder of files; anything with a
slash, a ``.parquet`` / ``.pq`` suffix, or an existing path) or
``DATASET[@SNAPSHOT]`` (the dataset's offline table at that snapshot, the
current one without ``@``). Ingestion tables get their JSON ``metadata``
column expanded into ``metadata.<key>`` columns, so drift in per-record
metadata shows, and lose their bookkeeping columns (ids, hashes, URIs, run
ids, timestamps), which differ between any two runs by construction.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from app.errors import InputError

if TYPE_CHECKING:
    from pipelines.runtime import Runtime

__all__ = ["as_table", "load_frame", "expand_metadata", "prepare_frame", "parse_spec", "BOOKKEEPING_COLUMNS"]

# Columns of an ingestion table that identify a record or a run rather than describe the data.
BOOKKEEPING_COLUMNS = ("sample_id", "dataset", "source", "uri", "sha256", "phash", "phash_hex", "run_id", "ingested_at")
_INGESTION_MARKERS = {"sample_id", "sha256", "run_id", "metadata"}
_DATASET_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_-]{0,127})(?:@(?P<snapshot>-?\d+|current|latest))?$")


def as_table(data: Any, what: str = "frame") -> pa.Table:
    """A pyarrow Table from a Table, RecordBatch, pandas or polars DataFrame."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__
    try:
        if module.startswith("pandas"):
            return pa.Table.from_pandas(data, preserve_index=False)
        if hasattr(data, "to_arrow"):  # polars and friends
            table = data.to_arrow()
            if isinstance(table, pa.Table):
                return table
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InputError(f"cannot read the {what} as a table: {exc}") from None
    raise InputError(f"the {what} must be a pyarrow Table or a pandas DataFrame, not {type(data).__name__}")


def parse_spec(spec: str | Path) -> tuple[str, Path | str, int | None]:
    """``("parquet", path, None)`` or ``("dataset", name, snapshot_id or None)``."""
    if isinstance(spec, Path):
        return "parquet", spec, None
    text = str(spec).strip()
    if not text:
        raise InputError("empty source: give a Parquet path or DATASET[@SNAPSHOT]")
    looks_like_path = "/" in text or "\\" in text or text.lower().endswith((".parquet", ".pq")) or Path(text).exists()
    if looks_like_path:
        return "parquet", Path(text).expanduser(), None
    m = _DATASET_SPEC.match(text)
    if m is None:
        raise InputError(f"{text!r} is neither a Parquet path nor DATASET[@SNAPSHOT] (snapshot ids are integers)")
    snap = m.group("snapshot")
    return "dataset", m.group("name"), None if snap in (None, "current", "latest") else int(snap)


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    if not path.exists():
        raise InputError(f"no such Parquet file or folder: {path}")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read Parquet: {first}") from None


def load_frame(spec: str | Path, rt: Runtime | None = None, *, keep_bookkeeping: bool = False) -> pa.Table:
    """The table a spec names, ready to compare (see :func:`prepare_frame`).

    ``DATASET`` and ``DATASET@SNAPSHOT`` read the offline store of ``rt``
    (required for them); errors are :class:`~app.errors.DataOpsError`\\ s
    (InputError for a bad spec or file, NotFoundError for an unknown table or
    snapshot)."""
    kind, target, snapshot = parse_spec(spec)
    if kind == "parquet":
        table = _read_parquet(Path(target))
    else:
        if rt is None:
            raise InputError(f"{spec!r} names a dataset; reading it needs a runtime")
        table = rt.offline.scan(str(target), snapshot)
    return prepare_frame(table, keep_bookkeeping=keep_bookkeeping)


def prepare_frame(table: pa.Table, *, keep_bookkeeping: bool = False) -> pa.Table:
    """Expand a JSON ``metadata`` column; for an ingestion table (it has
    sample_id, sha256, run_id and metadata) also drop the bookkeeping columns."""
    ingestion = _INGESTION_MARKERS <= set(table.column_names)
    table = expand_metadata(table)
    if ingestion and not keep_bookkeeping:
        table = table.drop_columns([c for c in BOOKKEEPING_COLUMNS if c in table.column_names])
    return table


def expand_metadata(table: pa.Table, column: str = "metadata") -> pa.Table:
    """Replace a string column of JSON objects by one column per key
    (``metadata.<key>``, nested objects as ``metadata.<key>.<subkey>``).

    The whole column is parsed at once by Arrow's JSON reader; when that fails
    (rows that are not objects, a key whose type changes between rows) each
    row is parsed in Python and a key of mixed types becomes a string column.
    A table without such a column is returned as it is."""
    if column not in table.column_names:
        return table
    col = table.column(column)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return table
    expanded = _expand_arrow(col)
    if expanded is None:
        expanded = _expand_python(col)
    rest = table.drop_columns([column])
    for name in expanded.column_names:
        out_name = f"{column}.{name}"
        if out_name in rest.column_names:
            continue
        rest = rest.append_column(out_name, expanded.column(name))
    return rest


def _expand_arrow(col: pa.ChunkedArray) -> pa.Table | None:
    import pyarrow.json as pj

    n = len(col)
    if n == 0:
        return pa.table({})
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), True)
    text = pc.if_else(blank, "{}", col)
    if pc.any(pc.match_substring(text, "\n")).as_py():
        return None  # pretty-printed rows would split; parse them one by one
    offsets = pa.array([0, n], type=pa.int32())
    values = text.combine_chunks()
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, values), pa.scalar("\n", values.type))[0].as_py()
    data = joined.encode("utf-8")
    try:
        parsed = pj.read_json(io.BytesIO(data), read_options=pj.ReadOptions(block_size=max(len(data) + 1, 1 << 20)))
    except (pa.ArrowException, ValueError):
        return None
    if parsed.num_rows != n:
        return None
    while any(pa.types.is_struct(f.type) for f in parsed.schema):
        parsed = parsed.flatten()
    return parsed


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _expand_python(col: pa.ChunkedArray) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for raw in col.to_pylist():
        try:
            obj = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            obj = {}
        rows.append(_flatten(obj) if isinstance(obj, dict) else {})
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    arrays: dict[str, pa.Array] = {}
    for key in keys:
        values = [r.get(key) for r in rows]
        try:
            arrays[key] = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError):
            arrays[key] = pa.array([None if v is None else json.dumps(v, sort_keys=True, default=str) for v in values])
    return pa.table(arrays) if arrays else pa.table({})
