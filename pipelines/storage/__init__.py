"""Storage for the data plane.

- :class:`ObjectStore`: content-addressed binaries on a folder or any fsspec URL.
- :class:`OfflineStore`: Iceberg tables (pyiceberg SQL catalog) with one
  snapshot per run, idempotent appends and rollback.
- :class:`OnlineStore`: latest values per ``"<dataset>/<sample_id>"`` key, on
  SQLite or Redis; :func:`open_online_store` picks the backend from a URL.

Nothing here does I/O at import time.
"""

from pipelines.storage._objects import ObjectStore
from pipelines.storage._offline import RUN_ID_PROPERTY, OfflineStore, SnapshotInfo
from pipelines.storage._online import (
    OnlineStore,
    RedisOnlineStore,
    SqliteOnlineStore,
    open_online_store,
)

__all__ = [
    "ObjectStore",
    "OfflineStore",
    "SnapshotInfo",
    "RUN_ID_PROPERTY",
    "OnlineStore",
    "SqliteOnlineStore",
    "RedisOnlineStore",
    "open_online_store",
]
