"""File sources, the event format and ``open_source`` dispatch (no services needed)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from app.errors import InputError
from pipelines.ingestion._sources import (
    INVALID_EVENT_KEY,
    FolderSource,
    JsonlEventSource,
    encode_event,
    event_record,
    open_source,
    redact_url,
)
from pipelines.runtime._records import SourceRecord

PNG = b"\x89PNG\r\n\x1a\n fake"


def _folder(root: Path) -> Path:
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("hello", encoding="utf-8")
    (root / "b" / "c.png").write_bytes(PNG)
    (root / "b" / "d.JPEG").write_bytes(b"jpeg")
    (root / "clip.wav").write_bytes(b"RIFF")
    (root / "notes.pdf").write_bytes(b"%PDF")
    return root


def _read_all(src: FolderSource | JsonlEventSource, n: int = 2) -> list[SourceRecord]:
    out: list[SourceRecord] = []
    while batch := src.read(n):
        assert len(batch) <= n
        out.extend(batch)
    return out


# ----------------------------------------------------------------------------- folder


def test_folder_lists_everything_recursively_in_sorted_order(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in")
    src = FolderSource(str(root))
    assert src.count() == 5
    records = _read_all(src)
    assert [r.source for r in records] == [
        str(root / "a.txt"),
        str(root / "b" / "c.png"),
        str(root / "b" / "d.JPEG"),
        str(root / "clip.wav"),
        str(root / "notes.pdf"),
    ]
    by_name = {r.filename: r for r in records}
    assert by_name["a.txt"].data == b"hello" and by_name["a.txt"].modality == "text"
    assert by_name["c.png"].data == PNG and by_name["c.png"].modality == "image"
    assert by_name["d.JPEG"].modality == "image"
    assert by_name["clip.wav"].modality == "audio"
    # Unsupported files are still yielded, so the pipeline can quarantine them.
    assert by_name["notes.pdf"].modality is None and by_name["notes.pdf"].data == b"%PDF"
    assert all(r.metadata == {} and r.ack_token is None for r in records)
    src.ack(records)  # a no-op
    assert src.read(10) == []
    src.close()


def test_folder_default_manifest_is_merged_and_not_a_record(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in")
    lines = [
        {"file": "a.txt", "label": "greeting"},
        {"file": "./b/c.png", "metadata": {"camera": "front", "split": "train"}, "label": "cat"},
        {"file": "missing.png", "label": "ghost"},
    ]
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    with FolderSource(str(root)) as src:
        assert src.count() == 5
        records = {r.filename: r for r in _read_all(src, 10)}
    assert "manifest.jsonl" not in records
    assert records["a.txt"].metadata == {"label": "greeting"}
    assert records["c.png"].metadata == {"label": "cat", "camera": "front", "split": "train"}
    assert records["notes.pdf"].metadata == {}
    assert src.manifest_unmatched == ["missing.png"]


def test_folder_explicit_manifest_outside_the_folder(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in")
    manifest = tmp_path / "labels.jsonl"
    manifest.write_text(json.dumps({"file": "b/d.JPEG", "label": "dog"}) + "\n", encoding="utf-8")
    records = {r.filename: r for r in _read_all(FolderSource(str(root), manifest=str(manifest)), 10)}
    assert records["d.JPEG"].metadata == {"label": "dog"}
    assert len(records) == 5


def test_folder_via_fsspec_url(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in")
    src = open_source(f"file://{root}")
    assert isinstance(src, FolderSource)
    assert len(_read_all(src)) == 5


def test_missing_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="source folder not found: .*nope"):
        FolderSource(str(tmp_path / "nope"))
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="not a folder"):
        FolderSource(str(tmp_path / "file.txt"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"file": "a.txt"}\n{"file": "b/c.png", oops}\n', r"manifest\.jsonl, line 2: .*column"),
        ('{"file": "a.txt"}\n\n["a.txt"]\n', r"manifest\.jsonl, line 3: expected a JSON object"),
        ('{"label": "x"}\n', r"manifest\.jsonl, line 1: missing 'file'"),
        ('{"file": "a.txt", "metadata": [1]}\n', r"line 1: 'metadata' must be a JSON object"),
        ('{"file": "a.txt"}\n{"file": "./a.txt"}\n', r"line 2: duplicate entry for './a.txt' \(first at line 1\)"),
    ],
)
def test_malformed_manifest_names_file_and_line(tmp_path: Path, content: str, expected: str) -> None:
    root = _folder(tmp_path / "in")
    (root / "manifest.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=expected):
        FolderSource(str(root))


def test_unreadable_manifest_is_an_input_error(tmp_path: Path) -> None:
    root = _folder(tmp_path / "in")
    with pytest.raises(InputError, match="manifest not found: .*absent.jsonl"):
        FolderSource(str(root), manifest=str(tmp_path / "absent.jsonl"))
    (root / "manifest.jsonl").write_bytes(b'{"file": "a.txt", "x": "\xff"}\n')
    with pytest.raises(InputError, match="line 1: not UTF-8"):
        FolderSource(str(root))


# ----------------------------------------------------------------------------- JSONL events


def test_jsonl_events_with_a_malformed_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [
        json.dumps({"id": "e1", "modality": "text", "text": "hello"}).encode(),
        json.dumps(
            {
                "id": "e2",
                "modality": "image",
                "data_b64": base64.b64encode(PNG).decode(),
                "filename": "x.png",
                "metadata": {"camera": "front"},
            }
        ).encode(),
        b'{"id": "e3", "modality": "text", "text": "unterminated',
        b"",
        json.dumps({"modality": "audio", "data_b64": "UklGRg=="}).encode(),
        b'{"id": "e6", "modality": "video", "text": "x"}',
        b"\xff\xfe not utf-8",
    ]
    path.write_bytes(b"\n".join(lines))  # no newline after the last line
    src = open_source(str(path))
    assert isinstance(src, JsonlEventSource)
    records = _read_all(src, 4)
    assert [r.source for r in records] == [
        f"{path}#e1",
        f"{path}#e2",
        f"{path}#3",
        f"{path}#5",
        f"{path}#6",
        f"{path}#7",
    ]
    e1, e2, bad, e5, e6, binary = records
    assert (e1.data, e1.modality, e1.metadata, e1.filename) == (b"hello", "text", {}, None)
    assert (e2.data, e2.modality, e2.filename, e2.metadata) == (PNG, "image", "x.png", {"camera": "front"})
    assert (e5.data, e5.modality) == (b"RIFF", "audio")
    # Malformed lines are records with the original bytes, not exceptions.
    assert bad.data == lines[2] and bad.modality is None
    assert "invalid JSON" in bad.metadata[INVALID_EVENT_KEY]
    assert "unknown modality 'video'" in e6.metadata[INVALID_EVENT_KEY] and e6.data == lines[5]
    assert "not UTF-8" in binary.metadata[INVALID_EVENT_KEY] and binary.data == lines[6]
    assert src.read(5) == []
    src.close()


def test_missing_event_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="event file not found"):
        JsonlEventSource(str(tmp_path / "none.jsonl"))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[1, 2]", "not an object"),
        (b'{"id": "x", "text": "a"}', "missing 'modality'"),
        (b'{"modality": "text"}', "exactly one of"),
        (b'{"modality": "text", "text": "a", "data_b64": "YQ=="}', "exactly one of"),
        (b'{"modality": "image", "data_b64": "***"}', "not a base64 string"),
        (b'{"modality": "text", "text": 3}', "'text' must be a string"),
        (b'{"modality": "text", "text": "a", "metadata": []}', "'metadata' must be a JSON object"),
        (b'{"id": true, "modality": "text", "text": "a"}', "'id' must be"),
    ],
)
def test_invalid_events_carry_a_reason(payload: bytes, reason: str) -> None:
    rec = event_record(payload, lambda eid: f"s#{eid}", ack_token=7)
    assert reason in rec.metadata[INVALID_EVENT_KEY]
    assert (rec.data, rec.modality, rec.source, rec.ack_token) == (payload, None, "s#None", 7)


def test_encode_event_round_trips() -> None:
    text = SourceRecord("a.txt", "héllo".encode(), {"k": 1}, "a.txt", "text")
    image = SourceRecord("c.png", PNG, {}, "c.png", "image")
    for rec in (text, image):
        back = event_record(encode_event(rec, event_id="id-1"), lambda eid: f"#{eid}")
        assert (back.source, back.data, back.metadata, back.filename, back.modality) == (
            "#id-1",
            rec.data,
            rec.metadata,
            rec.filename,
            rec.modality,
        )
    assert json.loads(encode_event(text))["text"] == "héllo"
    assert json.loads(encode_event({"modality": "text", "text": "x"}, event_id="e"))["id"] == "e"
    assert encode_event(b"raw") == b"raw" and encode_event("raw") == b"raw"


# ----------------------------------------------------------------------------- dispatch


def test_open_source_rejects_bad_stream_uris_and_options(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nats://host:port/STREAM/SUBJECT"):
        open_source("nats://127.0.0.1:4222/ONLY_STREAM")
    with pytest.raises(InputError, match="redis://host:port/STREAM"):
        open_source("redis://127.0.0.1:6379/")
    with pytest.raises(InputError, match="FolderSource: .*idle_timeout"):
        open_source(str(_folder(tmp_path / "in")), idle_timeout=1.0)


def test_redact_url_hides_credentials() -> None:
    assert redact_url("nats://user:secret@host:4222") == "nats://***@host:4222"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"
