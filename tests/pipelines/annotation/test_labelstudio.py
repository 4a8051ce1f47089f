"""Label Studio interchange: config XML, import JSON, and reading a JSON export."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest

from app.errors import InputError
from pipelines.annotation import AnnotationTaskRow, Box, export_tasks, label_config, parse_export, task_id_for

# A JSON export as Label Studio 1.x writes it (Export -> JSON), trimmed to two
# tasks: an image task with boxes (one cancelled annotation, one from a user
# object as older versions write it) and a text task imported without our ids.
LS_EXPORT = """
[
  {
    "id": 101,
    "annotations": [
      {
        "id": 2001,
        "completed_by": 1,
        "result": [
          {
            "original_width": 640,
            "original_height": 480,
            "image_rotation": 0,
            "value": {"x": 10.0, "y": 20.0, "width": 25.0, "height": 50.0, "rotation": 0, "rectanglelabels": ["car"]},
            "id": "aB3xY9kLm0",
            "from_name": "label",
            "to_name": "image",
            "type": "rectanglelabels",
            "origin": "manual"
          },
          {
            "original_width": 640,
            "original_height": 480,
            "image_rotation": 0,
            "value": {"x": 60.0, "y": 5.0, "width": 10.0, "height": 20.0, "rotation": 0, "rectanglelabels": ["person"]},
            "id": "Zq81mNp2Xc",
            "from_name": "label",
            "to_name": "image",
            "type": "rectanglelabels",
            "origin": "prediction-changed"
          }
        ],
        "was_cancelled": false,
        "ground_truth": false,
        "created_at": "2024-05-14T09:21:33.512345Z",
        "updated_at": "2024-05-14T09:21:40.100200Z",
        "draft_created_at": null,
        "lead_time": 12.874,
        "prediction": {},
        "result_count": 0,
        "unique_id": "6c1f5e0e-2a47-4c55-9c8e-1c1a9f0b6d2e",
        "import_id": null,
        "last_action": null,
        "task": 101,
        "project": 7,
        "updated_by": 1,
        "parent_prediction": 55,
        "parent_annotation": null,
        "last_created_by": null
      },
      {
        "id": 2002,
        "completed_by": 2,
        "result": [],
        "was_cancelled": true,
        "ground_truth": false,
        "created_at": "2024-05-14T09:25:01.000000Z",
        "updated_at": "2024-05-14T09:25:01.000000Z",
        "lead_time": 3.2,
        "task": 101,
        "project": 7
      },
      {
        "id": 2003,
        "completed_by": {"id": 3, "email": "kim@example.org", "first_name": "Kim", "last_name": ""},
        "result": [
          {
            "original_width": 640,
            "original_height": 480,
            "image_rotation": 0,
            "value": {"x": 11.0, "y": 21.0, "width": 24.0, "height": 48.0, "rotation": 0, "rectanglelabels": ["car"]},
            "id": "pP0o9i8U7y",
            "from_name": "label",
            "to_name": "image",
            "type": "rectanglelabels",
            "origin": "manual"
          }
        ],
        "was_cancelled": false,
        "ground_truth": false,
        "created_at": "2024-05-14T10:02:11.000001Z",
        "updated_at": "2024-05-14T10:02:11.000001Z",
        "lead_time": 20.5,
        "task": 101,
        "project": 7
      }
    ],
    "file_upload": "b1e4e2a4-street.jpg",
    "drafts": [],
    "predictions": [55],
    "data": {"image": "s3://bucket/street/0001.jpg", "task_id": "t_0001", "sample_id": "s-0001", "dataset": "street"},
    "meta": {},
    "created_at": "2024-05-14T09:00:00.000000Z",
    "updated_at": "2024-05-14T10:02:11.000001Z",
    "inner_id": 1,
    "total_annotations": 2,
    "cancelled_annotations": 1,
    "total_predictions": 1,
    "comment_count": 0,
    "unresolved_comment_count": 0,
    "last_comment_updated_at": null,
    "project": 7,
    "updated_by": 3,
    "comment_authors": []
  },
  {
    "id": 102,
    "annotations": [
      {
        "id": 2004,
        "completed_by": 2,
        "result": [
          {
            "value": {"choices": ["complaint"]},
            "id": "Lk2mN3bV4c",
            "from_name": "label",
            "to_name": "text",
            "type": "choices",
            "origin": "manual"
          }
        ],
        "was_cancelled": false,
        "ground_truth": true,
        "created_at": "2024-05-15T08:00:00.000000Z",
        "updated_at": "2024-05-15T08:00:00.000000Z",
        "lead_time": 4.0,
        "task": 102,
        "project": 8
      }
    ],
    "drafts": [],
    "predictions": [],
    "data": {"text": "https://files.example.org/tickets/8812.txt"},
    "meta": {},
    "created_at": "2024-05-15T07:00:00.000000Z",
    "updated_at": "2024-05-15T08:00:00.000000Z",
    "inner_id": 1,
    "total_annotations": 1,
    "cancelled_annotations": 0,
    "total_predictions": 0,
    "project": 8
  }
]
"""


def test_parse_a_real_shaped_export() -> None:
    records = parse_export(LS_EXPORT, users={1: "ana", 2: "raj"})
    assert [(r.task_id, r.annotator) for r in records] == [
        ("t_0001", "ana"),
        ("t_0001", "kim@example.org"),
        ("ls-102", "raj"),
    ]
    ana, kim, raj = records
    assert ana.sample_id == "s-0001" and ana.dataset == "street" and ana.ls_task_id == 101
    assert [(b.label, b.x, b.y, b.w, b.h) for b in ana.boxes] == [
        ("car", pytest.approx(64.0), pytest.approx(96.0), pytest.approx(160.0), pytest.approx(240.0)),
        ("person", pytest.approx(384.0), pytest.approx(24.0), pytest.approx(64.0), pytest.approx(96.0)),
    ]
    assert ana.label is None and ana.lead_time_s == pytest.approx(12.874)
    assert ana.created_at == datetime(2024, 5, 14, 9, 21, 33, 512345, tzinfo=UTC)
    assert kim.boxes[0].x == pytest.approx(70.4)
    assert raj.label == "complaint" and raj.boxes == [] and raj.sample_id is None
    # without a user map, ids get a stable name
    assert parse_export(LS_EXPORT)[0].annotator == "ls-user-1"


def _task(i: int, modality: str = "image", **kw: Any) -> AnnotationTaskRow:
    return AnnotationTaskRow(
        id=task_id_for("ds", f"s{i}"),
        dataset="ds",
        sample_id=f"s{i}",
        uri=f"s3://bucket/ds/{i}.{'png' if modality == 'image' else 'txt'}",
        modality=modality,
        meta={"width": 320, "height": 200} if modality == "image" else {},
        **kw,
    )


def _as_label_studio_export(imported: list[dict[str, Any]], answers: dict[int, list[tuple[int, Any]]]) -> str:
    """What Label Studio would export after people answered the imported
    tasks: per task index, (user id, result list) pairs."""
    tasks = []
    for i, item in enumerate(imported):
        anns = [
            {
                "id": 5000 + 10 * i + k,
                "completed_by": user,
                "result": result,
                "was_cancelled": False,
                "ground_truth": False,
                "created_at": "2024-06-01T12:00:00.000000Z",
                "updated_at": "2024-06-01T12:00:00.000000Z",
                "lead_time": 7.5,
                "task": 900 + i,
                "project": 3,
            }
            for k, (user, result) in enumerate(answers.get(i, []))
        ]
        tasks.append({"id": 900 + i, "data": item["data"], "annotations": anns, "predictions": [], "project": 3})
    return json.dumps(tasks)


def test_round_trip_classification() -> None:
    tasks = [
        _task(0, auto_label="cat", auto_confidence=0.7, auto_model="resnet-v3"),
        _task(1, auto_label="dog", auto_confidence=0.55, auto_model="resnet-v3"),
        _task(2, modality="text", auto_label="spam", auto_confidence=0.9),
    ]
    imported = export_tasks(tasks, model_version="fallback-v1")
    first = imported[0]
    assert first["data"]["image"] == tasks[0].uri and first["data"]["task_id"] == tasks[0].id
    pred = first["predictions"][0]
    assert pred["model_version"] == "resnet-v3" and pred["score"] == pytest.approx(0.7)
    assert pred["result"][0]["type"] == "choices" and pred["result"][0]["value"] == {"choices": ["cat"]}
    assert (pred["result"][0]["from_name"], pred["result"][0]["to_name"]) == ("label", "image")
    assert imported[2]["data"]["text"] == tasks[2].uri
    assert imported[2]["predictions"][0]["model_version"] == "fallback-v1"

    def choose(label: str, to: str = "image") -> list[dict[str, Any]]:
        return [{"id": "x", "type": "choices", "from_name": "label", "to_name": to, "value": {"choices": [label]}}]

    people = {
        0: [(1, imported[0]["predictions"][0]["result"]), (2, choose("cat")), (3, choose("dog"))],
        1: [(1, choose("dog")), (2, choose("dog"))],
        2: [(3, imported[2]["predictions"][0]["result"])],
    }
    parsed = parse_export(_as_label_studio_export(imported, people), users={1: "ana", 2: "raj", 3: "kim"})
    got = [(r.task_id, r.sample_id, r.annotator, r.label) for r in parsed]
    assert got == [
        (tasks[0].id, "s0", "ana", "cat"),
        (tasks[0].id, "s0", "raj", "cat"),
        (tasks[0].id, "s0", "kim", "dog"),
        (tasks[1].id, "s1", "ana", "dog"),
        (tasks[1].id, "s1", "raj", "dog"),
        (tasks[2].id, "s2", "kim", "spam"),
    ]


def test_round_trip_boxes() -> None:
    tasks = [_task(0), _task(1)]
    predicted = {
        tasks[0].id: [Box(12.5, 40, 100, 60, "car", 0.8), Box(200, 10, 30.25, 90, "person", 0.6)],
        tasks[1].id: [Box(0, 0, 320, 200, "bus", 0.9)],
    }
    imported = export_tasks(tasks, boxes=predicted, model_version="det-v2")
    result = imported[0]["predictions"][0]["result"]
    assert result[0]["type"] == "rectanglelabels" and result[0]["original_width"] == 320
    assert result[0]["value"]["x"] == pytest.approx(12.5 / 320 * 100)
    assert result[0]["value"]["rectanglelabels"] == ["car"]
    assert imported[0]["predictions"][0]["score"] == pytest.approx(0.6)

    # people accept the predictions as they are (Label Studio keeps the result items)
    people = {i: [(1, copy.deepcopy(item["predictions"][0]["result"]))] for i, item in enumerate(imported)}
    parsed = parse_export(_as_label_studio_export(imported, people), users={1: "ana"})
    assert [r.task_id for r in parsed] == [t.id for t in tasks]
    for record, task in zip(parsed, tasks, strict=True):
        assert record.annotator == "ana"
        expected = predicted[task.id]
        assert [b.label for b in record.boxes] == [b.label for b in expected]
        for got, want in zip(record.boxes, expected, strict=True):
            assert (got.x, got.y, got.w, got.h, got.score) == pytest.approx(
                (want.x, want.y, want.w, want.h, want.score)
            )


def test_label_config_is_valid_xml_with_every_label() -> None:
    root = ET.fromstring(label_config("classification", ["cat", "dog & co", "<odd>"]))
    choices = root.find("Choices")
    assert choices is not None and choices.get("toName") == "image" and choices.get("choice") == "single"
    assert [c.get("value") for c in choices.findall("Choice")] == ["cat", "dog & co", "<odd>"]
    assert root.find("Image") is not None and root.find("Image").get("value") == "$image"  # type: ignore[union-attr]
    boxes = ET.fromstring(label_config("boxes", ["car", "person"]))
    rect = boxes.find("RectangleLabels")
    assert rect is not None and [lb.get("value") for lb in rect.findall("Label")] == ["car", "person"]
    text = ET.fromstring(label_config("classification", ["spam", "ham"], modality="text"))
    assert text.find("Text") is not None and text.find("Choices").get("toName") == "text"  # type: ignore[union-attr]


def test_label_config_rejects_bad_requests() -> None:
    with pytest.raises(InputError, match="at least one"):
        label_config("classification", [])
    with pytest.raises(InputError, match="distinct"):
        label_config("classification", ["a", "a"])
    with pytest.raises(InputError, match="needs images"):
        label_config("boxes", ["a"], modality="text")
    with pytest.raises(InputError, match="image or text"):
        label_config("classification", ["a"], modality="audio")


def test_export_needs_image_size_for_boxes() -> None:
    task = _task(0)
    task.meta = {}
    with pytest.raises(InputError, match=task.id):
        export_tasks([task], boxes={task.id: [Box(0, 0, 1, 1, "x")]})
    plain = export_tasks([_task(1)])
    assert "predictions" not in plain[0]


def _broken(mutate: Any) -> list[dict[str, Any]]:
    tasks = json.loads(LS_EXPORT)
    mutate(tasks)
    return tasks


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t[0]["annotations"][0]["result"][0]["value"].pop("x"), "task 101.*'x'"),
        (lambda t: t[0]["annotations"][0].__setitem__("completed_by", None), "task 101.*completed_by"),
        (
            lambda t: t[1]["annotations"][0]["result"][0]["value"].__setitem__("choices", ["a", "b"]),
            "task 102.*one choice",
        ),
        (lambda t: t[1].pop("data"), "task 102.*data"),
        (lambda t: t[0].__setitem__("annotations", {}), "task 101.*list"),
        (lambda t: t[0]["annotations"][0].__setitem__("created_at", "yesterday"), "task 101.*created_at"),
        (lambda t: t[0]["annotations"][0]["result"][0]["value"].__setitem__("rotation", 30), "task 101.*rotated"),
    ],
)
def test_malformed_exports_name_the_task(mutate: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_export(_broken(mutate))


def test_not_an_export_at_all() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        parse_export("{oops")
    with pytest.raises(InputError, match="list of tasks"):
        parse_export('{"tasks": []}')
