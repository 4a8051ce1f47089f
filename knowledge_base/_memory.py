"""Incident memory: past incidents in Chroma, searched by meaning.

Embedded Chroma under ``<home>/chroma`` by default, a Chroma server when a URL
is configured, or an in-memory store for throwaway eval memories. Every
chromadb failure leaves here as :class:`StorageError`.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import chromadb
import httpx
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import ChromaError

from app.errors import ConfigError, DataOpsError, InputError, NotFoundError, StorageError
from app.settings import Settings

from ._codec import build_where, from_chroma, to_metadata
from ._embedding import MiniLMEmbedder, MiniLMEmbeddingFunction
from ._models import OUTCOME_FAILURE, OUTCOME_SUCCESS, IncidentRecord, Match
from ._seed import load_seed_incidents

__all__ = ["DEFAULT_COLLECTION", "IncidentMemory"]

DEFAULT_COLLECTION = "incidents"
_PAGE = 500
_CHROMA_ERRORS = (ChromaError, ValueError, OSError, sqlite3.Error, httpx.HTTPError)


@contextmanager
def _storage_errors(action: str) -> Iterator[None]:
    try:
        yield
    except DataOpsError:
        raise
    except _CHROMA_ERRORS as exc:
        raise StorageError(f"incident memory: {action} failed: {exc}") from exc


def _chroma_settings() -> ChromaSettings:
    return ChromaSettings(anonymized_telemetry=False)


class IncidentMemory:
    """Past incidents, recorded and recalled by similarity of their symptoms.

    Give exactly one of ``path`` (embedded store), ``url`` (Chroma server) or
    ``client`` (an existing Chroma client). Use :meth:`from_settings` in the
    application and :meth:`ephemeral` for throwaway memories.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        url: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        embedder: MiniLMEmbedder | None = None,
        client: ClientAPI | None = None,
    ) -> None:
        given = [name for name, value in (("path", path), ("url", url), ("client", client)) if value]
        if len(given) != 1:
            raise ConfigError(
                "incident memory needs exactly one of path, url or client"
                + (f"; got {', '.join(given)}" if given else "")
            )
        self._throwaway = False
        self._closed = False
        self._location: str
        with _storage_errors("opening the store"):
            if client is not None:
                self._client = client
                self._location = "client"
            elif url:
                self._client = _http_client(url)
                self._location = url
            else:
                assert path is not None
                folder = Path(path).expanduser()
                folder.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(folder), settings=_chroma_settings())
                self._location = str(folder)
            self._embedding_function = MiniLMEmbeddingFunction(embedder)
            try:
                self._collection: Collection = self._client.get_or_create_collection(
                    collection,
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=self._embedding_function,  # type: ignore[arg-type]
                )
                _require_cosine(self._collection)
            except BaseException:
                if client is None:  # ours to release; a caller's client stays open
                    self._client.close()  # type: ignore[attr-defined]
                raise
        self._name = collection

    # Constructors --------------------------------------------------------
    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        collection: str = DEFAULT_COLLECTION,
        embedder: MiniLMEmbedder | None = None,
    ) -> IncidentMemory:
        """The configured memory: the Chroma server at ``chroma_url``, else ``<home>/chroma``."""
        if settings.chroma_url:
            return cls(url=settings.chroma_url, collection=collection, embedder=embedder)
        return cls(settings.home / "chroma", collection=collection, embedder=embedder)

    @classmethod
    def ephemeral(cls, *, embedder: MiniLMEmbedder | None = None) -> IncidentMemory:
        """A private in-memory memory (its own collection), dropped on :meth:`close`."""
        with _storage_errors("opening an in-memory store"):
            client = chromadb.EphemeralClient(settings=_chroma_settings())
        # Chroma shares one in-memory system per process; a unique collection keeps this one private.
        memory = cls(client=client, collection=f"incidents-{uuid.uuid4().hex}", embedder=embedder)
        memory._throwaway = True
        memory._location = "memory"
        return memory

    # Properties ----------------------------------------------------------
    @property
    def location(self) -> str:
        """Where the memory lives: a folder, a server URL, ``memory`` or ``client``."""
        return self._location

    @property
    def collection_name(self) -> str:
        return self._name

    # Writing -------------------------------------------------------------
    def record(self, incident: IncidentRecord) -> None:
        """Insert or replace one incident (by id)."""
        self.record_many([incident])

    def record_many(self, incidents: Iterable[IncidentRecord]) -> int:
        """Insert or replace incidents (by id), embedding them in batches; returns how many."""
        items = list(incidents)
        for item in items:
            if not isinstance(item, IncidentRecord):
                raise InputError(f"expected IncidentRecord, got {type(item).__name__}")
        with _storage_errors("recording incidents"):
            for start in range(0, len(items), _PAGE):
                chunk = items[start : start + _PAGE]
                self._collection.upsert(
                    ids=[i.id for i in chunk],
                    documents=[i.document for i in chunk],
                    metadatas=[to_metadata(i) for i in chunk],  # type: ignore[misc]
                )
        return len(items)

    def clear(self) -> None:
        """Forget every incident (the collection itself stays)."""
        with _storage_errors("clearing"):
            while True:
                ids = self._collection.get(limit=_PAGE, include=[])["ids"]
                if not ids:
                    break
                self._collection.delete(ids=ids)

    def seed_if_empty(self) -> int:
        """Load the shipped seed incidents when memory is empty; returns how many were loaded."""
        if self.count() > 0:
            return 0
        return self.record_many(load_seed_incidents())

    # Reading -------------------------------------------------------------
    def count(self) -> int:
        with _storage_errors("counting"):
            return int(self._collection.count())

    def get(self, incident_id: str) -> IncidentRecord:
        """One incident by id; :class:`NotFoundError` when memory has none by that id."""
        with _storage_errors(f"reading incident {incident_id!r}"):
            result = self._collection.get(ids=[incident_id], include=["documents", "metadatas"])
            if not result["ids"]:
                raise NotFoundError(f"no incident {incident_id!r} in memory")
            docs, metas = result["documents"], result["metadatas"]
            assert docs is not None and metas is not None
            return from_chroma(result["ids"][0], docs[0], metas[0])

    def all(self) -> list[IncidentRecord]:
        """Every incident, oldest first."""
        records: list[IncidentRecord] = []
        with _storage_errors("listing incidents"):
            offset = 0
            while True:
                page = self._collection.get(
                    limit=_PAGE, offset=offset, include=["documents", "metadatas"]
                )
                ids, docs, metas = page["ids"], page["documents"], page["metadatas"]
                if not ids:
                    break
                assert docs is not None and metas is not None
                records.extend(from_chroma(i, d, m) for i, d, m in zip(ids, docs, metas, strict=True))
                offset += len(ids)
        return sorted(records, key=lambda r: (r.opened_at, r.id))

    def similar(
        self,
        query: str | IncidentRecord,
        *,
        k: int = 5,
        before: datetime | None = None,
        pipeline: str | None = None,
        min_similarity: float = 0.0,
    ) -> list[Match]:
        """The ``k`` incidents most similar to ``query``, most similar first.

        ``before`` keeps only incidents opened strictly earlier (filtered in
        Chroma, so a replay never sees the future); ``pipeline`` keeps one
        pipeline's incidents. An :class:`IncidentRecord` query never matches
        itself. Similarity is ``1 - cosine distance``.
        """
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        if isinstance(query, IncidentRecord):
            text, own_id = query.document, query.id
        elif isinstance(query, str):
            text, own_id = query, None
        else:
            raise InputError(f"query must be a str or IncidentRecord, got {type(query).__name__}")
        if not text.strip():
            raise InputError("query text is empty")
        where = build_where(before=before, pipeline=pipeline)
        with _storage_errors("searching"):
            if self._collection.count() == 0:
                return []
            result = self._collection.query(
                query_texts=[text],
                n_results=k + (1 if own_id else 0),
                where=where,  # type: ignore[arg-type]
                include=["documents", "metadatas", "distances"],
            )
            ids = result["ids"][0]
            docs, metas, dists = result["documents"], result["metadatas"], result["distances"]
            assert docs is not None and metas is not None and dists is not None
            matches = [
                Match(incident=from_chroma(i, d, m), similarity=1.0 - float(dist))
                for i, d, m, dist in zip(ids, docs[0], metas[0], dists[0], strict=True)
                if i != own_id
            ]
        matches = [m for m in matches if m.similarity >= min_similarity]
        matches.sort(key=lambda m: m.similarity, reverse=True)
        return matches[:k]

    def success_rate(
        self,
        query: str | IncidentRecord,
        playbook: str,
        before: datetime | None = None,
        k: int = 10,
        *,
        pipeline: str | None = None,
        min_similarity: float = 0.0,
    ) -> tuple[float, int] | None:
        """How often ``playbook`` worked on the ``k`` most similar past incidents.

        Returns ``(rate, n)``: the similarity-weighted share of successes
        (resolved) among the ``n`` similar incidents where the playbook was
        used and succeeded or failed (failed, rolled_back); escalated and
        no-action outcomes do not count. ``None`` when no similar incident used it.
        """
        if not playbook:
            raise InputError("playbook must be a non-empty id")
        matches = self.similar(
            query, k=k, before=before, pipeline=pipeline, min_similarity=min_similarity
        )
        total = succeeded = 0.0
        n = 0
        for match in matches:
            incident = match.incident
            weight = max(match.similarity, 0.0)
            if incident.playbook != playbook or weight <= 0.0:
                continue
            if incident.outcome in OUTCOME_SUCCESS:
                succeeded += weight
            elif incident.outcome not in OUTCOME_FAILURE:
                continue
            total += weight
            n += 1
        if n == 0:
            return None
        return succeeded / total, n

    # Lifecycle -----------------------------------------------------------
    def close(self) -> None:
        """Release the store (an ephemeral memory's incidents are dropped). Idempotent."""
        if self._closed:
            return
        self._closed = True
        with _storage_errors("closing"):
            if self._throwaway:
                self._client.delete_collection(self._name)
            close = getattr(self._client, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> IncidentMemory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IncidentMemory(location={self._location!r}, collection={self._name!r})"


# Helpers -----------------------------------------------------------------
def _http_client(url: str) -> ClientAPI:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"chroma_url must be http(s)://host[:port], got {url!r}")
    if parts.path not in ("", "/"):
        raise ConfigError(f"chroma_url must not have a path, got {url!r}")
    ssl = parts.scheme == "https"
    try:
        port = parts.port or (443 if ssl else 8000)
    except ValueError:
        raise ConfigError(f"chroma_url has an invalid port: {url!r}") from None
    return chromadb.HttpClient(host=parts.hostname, port=port, ssl=ssl, settings=_chroma_settings())


def _require_cosine(collection: Collection) -> None:
    config = collection.configuration
    index = config.get("hnsw") or config.get("spann") or {}
    space = index.get("space") if isinstance(index, Mapping) else None
    if space not in (None, "cosine"):
        raise StorageError(
            f"collection {collection.name!r} uses {space} distance; incident memory needs cosine"
        )
