"""Where embeddings live: Zarr arrays (the record of every vector) and Chroma
collections (the similarity index over them).

Zarr: ``<home>/enrichment/<dataset>.zarr``, one group per ``<version>/<kind>``
holding ``vectors`` (n x d float32, unit rows) and ``sample_ids`` (n strings,
row order), with the model's name in the group's attributes. Chroma: one
collection per dataset, kind and version (``enr_<dataset>_<kind>_<version>``;
model versions differ in dimension), cosine space, our own vectors passed
explicitly so Chroma never embeds anything itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from app.errors import ConfigError, DataOpsError, NotFoundError, StorageError
from app.settings import Settings

__all__ = ["VectorStore", "VectorHit", "collection_name"]

_PAGE = 1000


@dataclass(frozen=True)
class VectorHit:
    sample_id: str
    similarity: float
    kind: str


def collection_name(dataset: str, kind: str, version: str) -> str:
    return f"enr_{dataset}_{kind}_{version}"


@contextmanager
def _storage(action: str) -> Iterator[None]:
    import httpx
    from chromadb.errors import ChromaError

    try:
        yield
    except DataOpsError:
        raise
    except (ChromaError, ValueError, OSError, KeyError, sqlite3.Error, httpx.HTTPError) as exc:
        raise StorageError(f"enrichment vectors: {action} failed: {exc}") from exc


class VectorStore:
    """Zarr arrays and Chroma collections of one workspace."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = (settings.home / "enrichment").resolve()
        self._client: Any = None

    # -- Zarr ----------------------------------------------------------------
    def _group_path(self, dataset: str) -> Path:
        return self.root / f"{dataset}.zarr"

    def _group(self, dataset: str, *, create: bool) -> Any:
        import zarr

        path = self._group_path(dataset)
        if not create and not path.exists():
            return None
        with _storage(f"opening {path}"):
            return zarr.open_group(str(path), mode="a" if create else "r")

    def append(self, dataset: str, version: str, kind: str, model: str, ids: Sequence[str], vectors: np.ndarray) -> int:
        """Append rows for samples the array does not hold yet; returns how many
        were new (a retried run writes nothing twice)."""
        group = self._group(dataset, create=True)
        dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        with _storage(f"writing {dataset}/{version}/{kind}"):
            sub = group.require_group(f"{version}/{kind}")
            if "model" in sub.attrs and (sub.attrs["model"] != model or sub.attrs["dim"] != dim):
                raise StorageError(
                    f"{dataset} {version}/{kind} holds {sub.attrs['model']} vectors ({sub.attrs['dim']}-d), "
                    f"not {model} ({dim}-d)"
                )
            sub.attrs.update({"model": model, "dim": dim})
            # require_array would compare the requested (empty) shape with a grown array: open what exists.
            if "vectors" in sub:
                vec, sid = sub["vectors"], sub["sample_ids"]
            else:
                vec = sub.create_array("vectors", shape=(0, dim), chunks=(1024, max(dim, 1)), dtype="float32")
                sid = sub.create_array("sample_ids", shape=(0,), chunks=(4096,), dtype=str)
            have = set(sid[:].tolist()) if sid.shape[0] else set()
            keep = [i for i, s in enumerate(ids) if s not in have]
            if keep:
                vec.append(np.ascontiguousarray(vectors[keep], dtype=np.float32))
                sid.append(np.array([ids[i] for i in keep], dtype=str))
        return len(keep)

    def read(self, dataset: str, version: str, kind: str) -> tuple[list[str], np.ndarray]:
        """Sample ids (row order) and their vectors; NotFoundError when absent."""
        group = self._group(dataset, create=False)
        key = f"{version}/{kind}"
        if group is None or key not in group:
            raise NotFoundError(f"no {kind} embeddings for {dataset} {version}")
        with _storage(f"reading {dataset}/{key}"):
            sub = group[key]
            return sub["sample_ids"][:].tolist(), np.asarray(sub["vectors"][:], dtype=np.float32)

    def kinds(self, dataset: str, version: str) -> dict[str, str]:
        """``{kind: model}`` of a version's arrays."""
        group = self._group(dataset, create=False)
        if group is None or version not in group:
            return {}
        with _storage(f"listing {dataset}/{version}"):
            sub = group[version]
            return {name: str(g.attrs.get("model", "")) for name, g in sub.groups()}

    def arrays_with_model(self, model: str, kinds: Sequence[str]) -> Iterator[tuple[str, str, list[str], np.ndarray]]:
        """Every array made by ``model`` for one of ``kinds``, in any dataset and
        version: ``(dataset, version, sample_ids, vectors)``."""
        if not self.root.exists():
            return
        for path in sorted(self.root.glob("*.zarr")):
            dataset = path.name[: -len(".zarr")]
            group = self._group(dataset, create=False)
            if group is None:
                continue
            for version, vgroup in group.groups():
                for kind, kgroup in vgroup.groups():
                    if kind in kinds and kgroup.attrs.get("model") == model:
                        ids, vectors = self.read(dataset, version, kind)
                        yield dataset, version, ids, vectors

    # -- Chroma --------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            chroma = ChromaSettings(anonymized_telemetry=False)
            with _storage("opening the vector index"):
                url = self.settings.chroma_url
                if url:
                    parts = urlsplit(url)
                    if parts.scheme not in ("http", "https") or not parts.hostname:
                        raise ConfigError(f"chroma_url must be http(s)://host[:port], got {url!r}")
                    ssl = parts.scheme == "https"
                    self._client = chromadb.HttpClient(
                        host=parts.hostname, port=parts.port or (443 if ssl else 8000), ssl=ssl, settings=chroma
                    )
                else:
                    path = self.settings.home / "chroma"
                    path.mkdir(parents=True, exist_ok=True)
                    self._client = chromadb.PersistentClient(path=str(path), settings=chroma)
        return self._client

    def _collection(self, dataset: str, kind: str, version: str, *, create: bool) -> Any:
        name = collection_name(dataset, kind, version)
        with _storage(f"opening collection {name}"):
            if create:
                return self.client.get_or_create_collection(
                    name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
                )
            if name not in {c.name for c in self.client.list_collections()}:
                raise NotFoundError(f"no {kind} vector index for {dataset} {version}")
            return self.client.get_collection(name, embedding_function=None)

    def index(
        self, dataset: str, version: str, kind: str, ids: Sequence[str], vectors: np.ndarray, metadatas: Sequence[dict[str, Any]]
    ) -> None:
        """Insert or replace vectors by sample id (idempotent)."""
        col = self._collection(dataset, kind, version, create=True)
        with _storage(f"indexing {dataset}/{version}/{kind}"):
            for start in range(0, len(ids), _PAGE):
                end = start + _PAGE
                col.upsert(
                    ids=list(ids[start:end]),
                    embeddings=np.ascontiguousarray(vectors[start:end], dtype=np.float32),
                    metadatas=list(metadatas[start:end]),
                )

    def query(
        self, dataset: str, version: str, kind: str, vector: np.ndarray, k: int, exclude: str | None = None
    ) -> list[VectorHit]:
        col = self._collection(dataset, kind, version, create=False)
        with _storage(f"searching {dataset}/{version}/{kind}"):
            n = int(col.count())
            if n == 0:
                return []
            result = col.query(
                query_embeddings=np.asarray(vector, dtype=np.float32)[None, :],
                n_results=min(n, k + (1 if exclude else 0)),
                include=["distances"],
            )
        ids, distances = result["ids"][0], (result["distances"] or [[]])[0]
        hits = [VectorHit(i, 1.0 - float(d), kind) for i, d in zip(ids, distances, strict=True) if i != exclude]
        return hits[:k]

    def vector_of(self, dataset: str, version: str, kind: str, sample_id: str) -> np.ndarray | None:
        try:
            col = self._collection(dataset, kind, version, create=False)
        except NotFoundError:
            return None
        with _storage(f"reading {sample_id} from {dataset}/{version}/{kind}"):
            got = col.get(ids=[sample_id], include=["embeddings"])
        emb = got.get("embeddings")
        if emb is None or len(emb) == 0:
            return None
        return np.asarray(emb[0], dtype=np.float32)
