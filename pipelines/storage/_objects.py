"""Content-addressed binaries on any fsspec filesystem.

An object lives at ``<root>/<sha[:2]>/<sha[2:4]>/<sha><ext>`` where ``sha`` is
the SHA-256 of its bytes. Writing is idempotent; on a local folder it goes to a
temporary name first and is then renamed into place, so a crash never leaves a
partial object under its final name. On object stores (S3 and friends) a single
PUT is already all-or-nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from app.errors import InputError, NotFoundError, StorageError

__all__ = ["ObjectStore"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXT = re.compile(r"^(\.[A-Za-z0-9_-]{1,16}){1,3}$")
_TMP_SUFFIX = ".tmp"


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise InputError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


def _normalise_ext(ext: str) -> str:
    if not ext:
        return ""
    if not ext.startswith("."):
        ext = "." + ext
    if not _EXT.match(ext):
        raise InputError(f"invalid object extension {ext!r}: use letters, digits, '_' or '-', e.g. '.png'")
    return ext


class ObjectStore:
    """Content-addressed binary store on a local folder or any fsspec URL.

    ``url`` is a folder path, ``file://…``, ``memory://…``, ``s3://bucket/prefix``
    or any other URL fsspec understands; ``storage_options`` go to the fsspec
    filesystem (credentials, endpoint, …). Nothing is read or written until the
    first call.
    """

    def __init__(
        self, url: str, *, storage_options: Mapping[str, Any] | None = None, fsync: bool = False
    ) -> None:
        if not url or not isinstance(url, str):
            raise InputError("object store URL must be a non-empty string")
        try:
            fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except (ValueError, ImportError) as exc:
            raise StorageError(f"cannot open object store {url!r}: {exc}") from exc
        self.url = url
        self._fs: fsspec.AbstractFileSystem = fs
        self._root: str = root.rstrip("/")
        self._local = isinstance(fs, LocalFileSystem)
        # The rename is atomic, so a killed process never leaves a partial
        # object; fsync adds power-loss durability at ~1 ms per object.
        self._fsync = fsync

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # Paths -------------------------------------------------------------
    def _dir(self, sha256: str) -> str:
        return f"{self._root}/{sha256[:2]}/{sha256[2:4]}"

    def _path(self, sha256: str, ext: str) -> str:
        return f"{self._dir(sha256)}/{sha256}{ext}"

    def uri_for(self, sha256: str, ext: str = "") -> str:
        """The full URI an object with this digest and extension has (or would have)."""
        return self._fs.unstrip_protocol(self._path(_check_sha(sha256), _normalise_ext(ext)))

    def _path_of(self, uri: str) -> tuple[str, str]:
        """Map a URI (or, for a local store, a plain path) to (path, sha256)."""
        if not isinstance(uri, str) or not uri:
            raise InputError("object URI must be a non-empty string")
        protocols = self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
        scheme = uri.split("://", 1)[0] if "://" in uri else None
        if (scheme is None and not self._local) or (scheme is not None and scheme not in protocols):
            raise InputError(f"{uri!r} is not an object of the store at {self.url!r}")
        path = self._fs._strip_protocol(uri)
        if self._local:
            path = os.path.normpath(path)
        prefix = f"{self._root}/" if self._root else "/"
        rel = path[len(prefix) :] if path.startswith(prefix) else None
        match = re.match(r"^([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})", rel or "")
        if rel is None or match is None or not match.group(3).startswith(match.group(1) + match.group(2)):
            raise InputError(f"{uri!r} is not an object of the store at {self.url!r}")
        ext = rel[match.end() :]
        if ext:
            _normalise_ext(ext)
        return path, match.group(3)

    # Operations --------------------------------------------------------
    def put(self, data: bytes, *, ext: str = "") -> str:
        """Store ``data`` under its SHA-256 unless already there; return its URI.

        An object already present with the wrong size (a truncated write left by
        a backend without atomic writes) is rewritten.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InputError(f"object data must be bytes, not {type(data).__name__}")
        data = bytes(data)
        ext = _normalise_ext(ext)
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._path(sha256, ext)
        uri = self._fs.unstrip_protocol(path)
        try:
            if self._local:
                try:
                    if os.stat(path).st_size == len(data):
                        return uri
                except FileNotFoundError:
                    pass
                self._write_local(path, data, self._fsync)
            elif self._fs.exists(path) and self._fs.size(path) == len(data):
                return uri
            else:
                self._fs.pipe_file(path, data)
        except OSError as exc:
            raise StorageError(f"cannot write object {uri}: {exc}") from exc
        return uri

    @staticmethod
    def _write_local(path: str, data: bytes, fsync: bool) -> None:
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        # The temporary name starts with '.', so it never matches a digest.
        tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}{_TMP_SUFFIX}")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    def get(self, uri: str, *, verify: bool = True) -> bytes:
        """Read an object by the URI :meth:`put` returned.

        With ``verify`` (the default) the bytes are checked against the digest in
        the name; a mismatch (a corrupted or truncated object) raises StorageError.
        """
        path, sha256 = self._path_of(uri)
        try:
            data: bytes = self._fs.cat_file(path)
        except FileNotFoundError:
            raise NotFoundError(f"no object {uri!r} in the store at {self.url!r}") from None
        except OSError as exc:
            raise StorageError(f"cannot read object {uri!r}: {exc}") from exc
        if verify and hashlib.sha256(data).hexdigest() != sha256:
            raise StorageError(f"object {uri!r} is corrupt: its bytes do not match its SHA-256")
        return data

    def exists(self, sha256: str) -> bool:
        """Whether an object with this digest is stored (under any extension)."""
        _check_sha(sha256)
        try:
            names = self._fs.ls(self._dir(sha256), detail=False)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot list objects in {self.url!r}: {exc}") from exc
        for name in names:
            base = str(name).rstrip("/").rsplit("/", 1)[-1]
            if base == sha256 or base.startswith(sha256 + "."):
                return True
        return False
