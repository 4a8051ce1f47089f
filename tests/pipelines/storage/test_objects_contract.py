"""One contract for :class:`ObjectStore`, run on a local folder and on memory://."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from app.errors import InputError, NotFoundError, StorageError
from pipelines.storage import ObjectStore


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _raw_fs(store: ObjectStore) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(store.url)
    return fs, root.rstrip("/")


def _files(store: ObjectStore) -> list[str]:
    fs, root = _raw_fs(store)
    if not fs.exists(root or "/"):
        return []
    return sorted(p for p in fs.find(root or "/") if not fs.isdir(p))


class ObjectStoreContract:
    """Every object store backend passes these. Subclasses provide ``objects``."""

    def test_put_then_get_round_trips(self, objects: ObjectStore) -> None:
        data = b"\x89PNG fake image bytes"
        uri = objects.put(data, ext=".png")
        assert objects.get(uri) == data
        assert objects.exists(_sha(data))

    def test_layout_is_content_addressed(self, objects: ObjectStore) -> None:
        data = b"layout"
        sha = _sha(data)
        uri = objects.put(data, ext="png")
        assert uri.endswith(f"/{sha[:2]}/{sha[2:4]}/{sha}.png")
        assert "://" in uri
        assert objects.uri_for(sha, ".png") == uri
        assert objects.uri_for(sha, "png") == uri

    def test_put_is_idempotent(self, objects: ObjectStore) -> None:
        data = b"same bytes twice"
        first = objects.put(data)
        second = objects.put(data)
        assert first == second
        assert len(_files(objects)) == 1
        assert objects.get(second) == data

    def test_distinct_content_gets_distinct_objects(self, objects: ObjectStore) -> None:
        a = objects.put(b"a")
        b = objects.put(b"b")
        assert a != b
        assert objects.get(a) == b"a" and objects.get(b) == b"b"

    def test_empty_object(self, objects: ObjectStore) -> None:
        uri = objects.put(b"")
        assert objects.get(uri) == b""

    def test_exists_is_false_for_unknown_digest(self, objects: ObjectStore) -> None:
        assert not objects.exists(_sha(b"never stored"))

    def test_get_unknown_object_raises_not_found(self, objects: ObjectStore) -> None:
        with pytest.raises(NotFoundError):
            objects.get(objects.uri_for(_sha(b"never stored"), ".bin"))

    def test_uri_outside_the_store_is_refused(self, objects: ObjectStore) -> None:
        with pytest.raises(InputError):
            objects.get("s3://elsewhere/ab/cd/" + "0" * 64)
        with pytest.raises(InputError):
            objects.get(objects.uri_for(_sha(b"x")).rsplit("/", 3)[0] + "/not-an-object")

    def test_bad_digest_and_extension_are_input_errors(self, objects: ObjectStore) -> None:
        with pytest.raises(InputError):
            objects.exists("not-a-digest")
        with pytest.raises(InputError):
            objects.uri_for("A" * 64)
        with pytest.raises(InputError):
            objects.put(b"x", ext="../etc")
        with pytest.raises(InputError):
            objects.put("text, not bytes")  # type: ignore[arg-type]

    def test_truncated_object_is_detected_and_repaired(self, objects: ObjectStore) -> None:
        # What a crash mid-write leaves on a backend without atomic writes.
        data = b"0123456789" * 100
        uri = objects.uri_for(_sha(data), ".bin")
        fs, _ = _raw_fs(objects)
        path = fs._strip_protocol(uri)
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data[:37])
        with pytest.raises(StorageError, match="corrupt"):
            objects.get(uri)
        assert objects.put(data, ext=".bin") == uri
        assert objects.get(uri) == data

    def test_leftover_temporary_file_is_not_an_object(self, objects: ObjectStore) -> None:
        data = b"interrupted earlier"
        sha = _sha(data)
        fs, _ = _raw_fs(objects)
        directory = fs._strip_protocol(objects.uri_for(sha)).rsplit("/", 1)[0]
        fs.makedirs(directory, exist_ok=True)
        fs.pipe_file(f"{directory}/.{sha}.{uuid.uuid4().hex}.tmp", data[:5])
        assert not objects.exists(sha)
        uri = objects.put(data)
        assert objects.exists(sha)
        assert objects.get(uri) == data


# Backends ---------------------------------------------------------------
@pytest.fixture(params=["local", "memory"])
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield ObjectStore(str(tmp_path / "objects"))
        return
    url = f"memory://dataops-test-{uuid.uuid4().hex}"
    yield ObjectStore(url)
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root):
        fs.rm(root, recursive=True)


class TestObjectStore(ObjectStoreContract):
    pass


def test_local_interrupted_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    data = b"never lands"

    def crash(src: str, dst: str) -> None:
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="disk pulled out"):
        store.put(data, ext=".bin")
    monkeypatch.undo()
    assert not store.exists(_sha(data))
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []
    uri = store.put(data, ext=".bin")
    assert store.get(uri) == data


def test_local_store_accepts_plain_paths(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    uri = store.put(b"plain", ext=".txt")
    assert uri.startswith("file://")
    plain = uri[len("file://") :]
    assert Path(plain).read_bytes() == b"plain"
    assert store.get(plain) == b"plain"
