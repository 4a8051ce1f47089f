"""File sources (a folder of files, a JSONL file of events), the JSON event
format shared with the stream sources, and ``open_source``.

An event is one JSON object::

    {"id": "e1", "modality": "text", "text": "hello"}
    {"id": "e2", "modality": "image", "data_b64": "iVBO...", "filename": "x.png",
     "metadata": {"camera": "front"}}

A payload that is not a valid event is never an exception: it becomes a record
whose ``data`` is the original bytes, ``modality`` is None and
``metadata[INVALID_EVENT_KEY]`` holds the reason, so the pipeline quarantines
it with nothing lost.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, Self, TypeVar, get_args
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from app.errors import InputError, StorageError
from pipelines.runtime._records import Modality, Source, SourceRecord

__all__ = [
    "INVALID_EVENT_KEY",
    "MODALITY_BY_EXTENSION",
    "FolderSource",
    "JsonlEventSource",
    "encode_event",
    "event_record",
    "open_source",
    "redact_url",
]

INVALID_EVENT_KEY = "_invalid_event"
"""Metadata key set on a record whose payload is not a valid event (value: the reason)."""

MODALITY_BY_EXTENSION: Mapping[str, Modality] = {
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".wav": "audio",
    ".txt": "text",
}

_S = TypeVar("_S", bound=Source)
_MODALITIES: tuple[str, ...] = get_args(Modality)
_DEFAULT_MANIFEST = "manifest.jsonl"


# --------------------------------------------------------------------------- events


def _decode(raw: bytes) -> tuple[str | None, SourceRecord]:
    """Parse one event payload into (event id, record without source); raise
    ``ValueError`` with a one-line reason if it is not a valid event."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"event is a JSON {type(obj).__name__}, not an object")
    event_id = obj.get("id")
    if event_id is not None and (isinstance(event_id, bool) or not isinstance(event_id, (str, int)) or event_id == ""):
        raise ValueError("'id' must be a non-empty string or an integer")
    modality = obj.get("modality")
    if modality is None:
        raise ValueError("missing 'modality'")
    if modality not in _MODALITIES:
        raise ValueError(f"unknown modality {modality!r} (expected one of {', '.join(_MODALITIES)})")
    if ("text" in obj) == ("data_b64" in obj):
        raise ValueError("an event needs exactly one of 'text' and 'data_b64'")
    if "text" in obj:
        if not isinstance(obj["text"], str):
            raise ValueError("'text' must be a string")
        data = obj["text"].encode("utf-8")
    else:
        try:
            if not isinstance(obj["data_b64"], str):
                raise ValueError
            data = base64.b64decode(obj["data_b64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("'data_b64' is not a base64 string") from None
    filename = obj.get("filename")
    if filename is not None and (not isinstance(filename, str) or not filename):
        raise ValueError("'filename' must be a non-empty string")
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError("'metadata' must be a JSON object")
    record = SourceRecord(source="", data=data, metadata=metadata, filename=filename, modality=modality)
    return (None if event_id is None else str(event_id)), record


def event_record(raw: bytes, source_for: Callable[[str | None], str], ack_token: Any = None) -> SourceRecord:
    """Turn one event payload into a record. ``source_for`` gets the event id
    (None when the payload is invalid or has none) and returns the record's
    source. An invalid payload becomes a record to quarantine, not an error."""
    try:
        event_id, record = _decode(raw)
    except ValueError as exc:
        return SourceRecord(source_for(None), raw, {INVALID_EVENT_KEY: str(exc)}, ack_token=ack_token)
    record.source, record.ack_token = source_for(event_id), ack_token
    return record


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_event(item: SourceRecord | Mapping[str, Any] | bytes | str, *, event_id: str | None = None) -> bytes:
    """Encode one event payload for a stream or a JSONL line.

    A :class:`SourceRecord` becomes an event (``text`` for UTF-8 text records,
    ``data_b64`` otherwise; id = ``event_id``, else the record's source). A
    mapping is dumped as JSON as is. ``bytes``/``str`` are sent unchanged,
    which is how tests publish malformed payloads.
    """
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, SourceRecord):
        event: dict[str, Any] = {"id": event_id or item.source, "modality": item.modality}
        try:
            if item.modality != "text":
                raise UnicodeError
            event["text"] = item.data.decode("utf-8")
        except UnicodeError:
            event["data_b64"] = base64.b64encode(item.data).decode("ascii")
        event |= {"filename": item.filename, "metadata": dict(item.metadata) or None}
        return _dumps({k: v for k, v in event.items() if v is not None})
    if isinstance(item, Mapping):
        return _dumps(dict(item) if event_id is None else {**item, "id": event_id})
    raise TypeError(f"cannot encode {type(item).__name__} as an event")


# --------------------------------------------------------------------------- files


class _Closing:
    """``with source:`` closes the source on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(url: str, what: str) -> tuple[AbstractFileSystem, str]:
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InputError(f"unsupported {what} URL {url}: {exc}") from None
    return fs, str(path)


def _load_manifest(fs: AbstractFileSystem, path: str, display: str) -> dict[str, dict[str, Any]]:
    """``file`` (relative path) → metadata. The metadata is the entry's
    ``metadata`` object if it has one, plus every other key besides ``file``."""
    try:
        with fs.open(path, "rb") as fh:
            raw: bytes = fh.read()
    except FileNotFoundError:
        raise InputError(f"manifest not found: {display}") from None
    except OSError as exc:
        raise InputError(f"cannot read manifest {display}: {exc}") from None

    entries: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"malformed manifest {display}, line {lineno}"
        try:
            entry = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{where}: not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: {exc.msg} (column {exc.colno})") from None
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected a JSON object")
        name = entry.get("file")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}: missing 'file' (the file's path relative to the folder)")
        nested = entry.get("metadata", {})
        if not isinstance(nested, dict):
            raise InputError(f"{where}: 'metadata' must be a JSON object")
        key = posixpath.normpath(name.replace("\\", "/"))
        if key in first_line:
            raise InputError(f"{where}: duplicate entry for {name!r} (first at line {first_line[key]})")
        first_line[key] = lineno
        metadata = {k: v for k, v in entry.items() if k not in ("file", "metadata")}
        metadata.update(nested)
        entries[key] = metadata
    return entries


class FolderSource(_Closing):
    """Every file under a local folder or fsspec URL, recursively, in sorted
    order. Files of unsupported types are yielded too (``modality`` None) so the
    pipeline quarantines them. An optional JSONL manifest (default:
    ``manifest.jsonl`` at the folder's top, if present) maps ``file`` to
    metadata; the manifest itself is not a record. ``ack`` is a no-op."""

    def __init__(self, url: str, manifest: str | None = None) -> None:
        fs, root = _resolve(url, "source folder")
        root = root.rstrip("/") or "/"
        # A local folder is named by its absolute path, so a resumed run finds its run whatever the cwd.
        self.uri = root if isinstance(fs, LocalFileSystem) else url
        try:
            if not fs.exists(root):
                raise InputError(f"source folder not found: {url}")
            if not fs.isdir(root):
                raise InputError(f"source is not a folder: {url}")
            paths = sorted(str(p) for p in fs.find(root, withdirs=False))
        except InputError:
            raise
        except Exception as exc:  # any filesystem backend's error
            raise StorageError(f"cannot list source folder {url}: {exc}") from exc

        self._fs = fs
        self._root = root
        manifest_path: str | None = None
        metadata: dict[str, dict[str, Any]] = {}
        if manifest is not None:
            mfs, mpath = _resolve(manifest, "manifest")
            metadata = _load_manifest(mfs, mpath, manifest)
            if type(mfs) is type(fs):
                manifest_path = mpath
        # A landing zone often holds one folder per delivery, each with its own
        # manifest: every manifest.jsonl describes the files beside it.
        nested = [p for p in paths if posixpath.basename(p) == _DEFAULT_MANIFEST and p != manifest_path]
        if manifest is not None:
            nested = []
        for mpath in nested:
            prefix = posixpath.dirname(mpath)[len(root.rstrip("/")) + 1 :]
            for rel, meta in _load_manifest(fs, mpath, self._display(mpath)).items():
                metadata[posixpath.join(prefix, rel) if prefix else rel] = meta

        self._paths = [p for p in paths if p != manifest_path and p not in nested]
        self._metadata = metadata
        relative = {self._relative(p) for p in self._paths}
        self.manifest_unmatched: list[str] = sorted(set(metadata) - relative)
        """Manifest entries that name no file in the folder."""
        self._next = 0

    def _relative(self, path: str) -> str:
        prefix = self._root.rstrip("/") + "/"
        return path[len(prefix) :] if path.startswith(prefix) else posixpath.basename(path)

    def _display(self, path: str) -> str:
        return path if isinstance(self._fs, LocalFileSystem) else str(self._fs.unstrip_protocol(path))

    def count(self) -> int:
        """Total number of files this source yields (for progress bars)."""
        return len(self._paths)

    def read(self, n: int) -> list[SourceRecord]:
        batch = self._paths[self._next : self._next + max(n, 0)]
        records: list[SourceRecord] = []
        for path in batch:
            source = self._display(path)
            try:
                data = self._fs.cat_file(path)
            except Exception as exc:  # any filesystem backend's error
                raise StorageError(f"cannot read {source}: {exc}") from exc
            name = posixpath.basename(path)
            ext = posixpath.splitext(name)[1].lower()
            records.append(
                SourceRecord(
                    source=source,
                    data=bytes(data),
                    metadata=dict(self._metadata.get(self._relative(path), {})),
                    filename=name,
                    modality=MODALITY_BY_EXTENSION.get(ext),
                )
            )
            self._next += 1
        return records

    def ack(self, records: Sequence[SourceRecord]) -> None:
        """Files need no acknowledgement."""

    def close(self) -> None:
        self._next = len(self._paths)


class JsonlEventSource(_Closing):
    """Events from a JSONL file (local path or fsspec URL), one per line, read
    lazily. ``source`` is ``"<path>#<id>"`` (``#<line number>`` for an event
    without id or an invalid line). Blank lines carry no data and are skipped.
    ``ack`` is a no-op."""

    def __init__(self, path: str) -> None:
        fs, fpath = _resolve(path, "event file")
        self.uri = fpath if isinstance(fs, LocalFileSystem) else path
        try:
            if fs.isdir(fpath):
                raise InputError(f"event file is a folder: {path}")
            self._fh: IO[bytes] | None = fs.open(fpath, "rb")
        except InputError:
            raise
        except FileNotFoundError:
            raise InputError(f"event file not found: {path}") from None
        except Exception as exc:  # any filesystem backend's error
            raise InputError(f"cannot read event file {path}: {exc}") from exc
        self._lineno = 0

    def read(self, n: int) -> list[SourceRecord]:
        records: list[SourceRecord] = []
        while self._fh is not None and len(records) < n:
            try:
                line = self._fh.readline()
            except Exception as exc:  # any filesystem backend's error
                raise StorageError(f"cannot read event file {self.uri}: {exc}") from exc
            if not line:
                self.close()
                break
            self._lineno += 1
            payload = line.rstrip(b"\r\n")
            if not payload.strip():
                continue
            records.append(event_record(payload, self._source_for(self._lineno)))
        return records

    def _source_for(self, lineno: int) -> Callable[[str | None], str]:
        def source(event_id: str | None) -> str:
            return f"{self.uri}#{event_id if event_id is not None else lineno}"

        return source

    def ack(self, records: Sequence[SourceRecord]) -> None:
        """A file needs no acknowledgement."""

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# --------------------------------------------------------------------------- dispatch


def redact_url(url: str) -> str:
    """The URL without credentials, for messages and ``uri``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _server(parts: SplitResult, keep_query: bool) -> str:
    return urlunsplit((parts.scheme, parts.netloc, "", parts.query if keep_query else "", ""))


def _construct(cls: type[_S], *args: Any, **opts: Any) -> _S:
    try:
        inspect.signature(cls).bind(*args, **opts)
    except TypeError as exc:
        raise InputError(f"{cls.__name__}: {exc}") from None
    return cls(*args, **opts)


def open_source(uri: str, **opts: Any) -> Source:
    """Open the source a URI names; ``opts`` go to the source's constructor.

    - ``nats://host:port/STREAM/SUBJECT`` → :class:`NatsJetStreamSource`
    - ``redis://host:port/STREAM`` (the query, e.g. ``?db=N``, goes to redis-py) → :class:`RedisStreamSource`
    - a ``*.jsonl`` file → :class:`JsonlEventSource`
    - anything else (a folder or fsspec URL) → :class:`FolderSource`
    """
    from pipelines.ingestion._streams import NatsJetStreamSource, RedisStreamSource  # _streams imports this module

    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("nats", "tls"):
        path = unquote(parts.path).strip("/")
        stream, _, subject = path.partition("/")
        if not stream or not subject or parts.query:
            raise InputError(f"NATS source must be nats://host:port/STREAM/SUBJECT, got {redact_url(uri)}")
        return _construct(NatsJetStreamSource, _server(parts, False), stream, subject, **opts)
    if scheme in ("redis", "rediss"):
        stream = unquote(parts.path).strip("/")
        if not stream or "/" in stream:
            raise InputError(f"Redis source must be redis://host:port/STREAM[?db=N], got {redact_url(uri)}")
        return _construct(RedisStreamSource, _server(parts, True), stream, **opts)
    if parts.path.lower().endswith(".jsonl"):
        return _construct(JsonlEventSource, uri, **opts)
    return _construct(FolderSource, uri, **opts)
