"""Label Studio interchange: the labelling config, tasks to import (with the
model's labels as pre-annotations) and people's answers read back from a
Label Studio JSON export.

Formats follow Label Studio's documented task import format (``data`` +
``predictions``) and JSON export (tasks with ``annotations``). Boxes are
percentages of the image in Label Studio and pixels here; the export carries
``original_width`` / ``original_height`` so the conversion is exact.
"""

from __future__ import annotations

import hashlib
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from app.errors import InputError
from pipelines.annotation._consensus import Box
from pipelines.annotation._models import AnnotationTaskRow

__all__ = ["LSKind", "LSAnnotation", "FROM_NAME", "label_config", "export_tasks", "parse_export"]

LSKind = Literal["classification", "boxes"]
FROM_NAME = "label"  # the control tag's name in every config we write
_DATA_KEYS = {"image": "image", "text": "text"}  # modality -> the object tag's name and its data key


def _data_key(modality: str) -> str:
    key = _DATA_KEYS.get(modality)
    if key is None:
        raise InputError(f"Label Studio tasks here are image or text tasks, not {modality!r}")
    return key


def label_config(kind: LSKind, labels: Sequence[str], *, modality: str = "image") -> str:
    """The ``<View>`` labelling config: single-choice ``Choices`` for
    classification, ``RectangleLabels`` for boxes (images only)."""
    if kind not in ("classification", "boxes"):
        raise InputError(f"unknown Label Studio task kind {kind!r}; use classification or boxes")
    if not labels or any(not lb for lb in labels):
        raise InputError("a labelling config needs at least one non-empty label")
    if len(set(labels)) != len(labels):
        raise InputError(f"labels must be distinct, got {list(labels)}")
    key = _data_key(modality)
    if kind == "boxes" and key != "image":
        raise InputError("box labelling needs images")
    view = ET.Element("View")
    if key == "image":
        ET.SubElement(view, "Image", name=key, value=f"${key}", zoom="true")
    else:
        ET.SubElement(view, "Text", name=key, value=f"${key}", valueType="url")
    if kind == "classification":
        control = ET.SubElement(view, "Choices", name=FROM_NAME, toName=key, choice="single", showInline="true")
        for lb in labels:
            ET.SubElement(control, "Choice", value=lb)
    else:
        control = ET.SubElement(view, "RectangleLabels", name=FROM_NAME, toName=key)
        for lb in labels:
            ET.SubElement(control, "Label", value=lb)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


def _result_id(task_id: str, index: int) -> str:
    return hashlib.sha1(f"{task_id}:{index}".encode()).hexdigest()[:10]


def _size(task: AnnotationTaskRow) -> tuple[float, float]:
    try:
        width, height = float(task.meta["width"]), float(task.meta["height"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"task {task.id!r}: boxes need the image's width and height in the task's meta") from None
    if not (width > 0 and height > 0):
        raise InputError(f"task {task.id!r}: image size {width}x{height} is not positive")
    return width, height


def _box_result(task: AnnotationTaskRow, box: Box, index: int, key: str) -> dict[str, Any]:
    width, height = _size(task)
    return {
        "id": _result_id(task.id, index),
        "type": "rectanglelabels",
        "from_name": FROM_NAME,
        "to_name": key,
        "original_width": int(width) if width.is_integer() else width,
        "original_height": int(height) if height.is_integer() else height,
        "image_rotation": 0,
        "value": {
            "x": box.x / width * 100.0,
            "y": box.y / height * 100.0,
            "width": box.w / width * 100.0,
            "height": box.h / height * 100.0,
            "rotation": 0,
            "rectanglelabels": [box.label],
        },
        "score": box.score,
    }


def export_tasks(
    tasks: Sequence[AnnotationTaskRow],
    *,
    boxes: Mapping[str, Sequence[Box]] | None = None,
    model_version: str | None = None,
    urls: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Label Studio import JSON for ``tasks``: ``data`` holds the sample's URL
    (``urls[task.id]`` when given, else its uri) and our ids; the model's
    label (``auto_label``) and predicted ``boxes`` (task id -> boxes) become a
    prediction with its model version and score."""
    out: list[dict[str, Any]] = []
    for task in tasks:
        key = _data_key(task.modality)
        data: dict[str, Any] = {
            key: (urls or {}).get(task.id, task.uri),
            "task_id": task.id,
            "sample_id": task.sample_id,
            "dataset": task.dataset,
        }
        for extra in ("width", "height"):
            if extra in task.meta:
                data[extra] = task.meta[extra]
        result: list[dict[str, Any]] = []
        scores: list[float] = []
        if task.auto_label is not None:
            result.append(
                {
                    "id": _result_id(task.id, 0),
                    "type": "choices",
                    "from_name": FROM_NAME,
                    "to_name": key,
                    "value": {"choices": [task.auto_label]},
                }
            )
            if task.auto_confidence is not None:
                scores.append(float(task.auto_confidence))
        predicted = list((boxes or {}).get(task.id, ()))
        if predicted and key != "image":
            raise InputError(f"task {task.id!r}: boxes need an image task, not {task.modality!r}")
        result.extend(_box_result(task, b, i + 1, key) for i, b in enumerate(predicted))
        scores.extend(b.score for b in predicted)
        item: dict[str, Any] = {"data": data}
        if result:
            version = task.auto_model or model_version or "unknown"
            score = min(scores) if scores else None
            item["predictions"] = [{"model_version": version, "score": score, "result": result}]
        out.append(item)
    return out


class LSAnnotation(BaseModel):
    """One person's answer read from a Label Studio export. ``task_id`` is
    ours when the task came from :func:`export_tasks`, else ``ls-<id>``; boxes
    are in pixels when the export gives the image size, else in percent."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    ls_task_id: int | None = None
    sample_id: str | None = None
    dataset: str | None = None
    annotation_id: int | str | None = None
    annotator: str
    label: str | None = None
    boxes: list[Box] = []
    created_at: datetime | None = None
    lead_time_s: float | None = None


def _annotator(raw: Any, users: Mapping[int, str], where: str) -> str:
    if isinstance(raw, Mapping):
        email = raw.get("email")
        if isinstance(email, str) and email:
            return email
        raw = raw.get("id")
    if isinstance(raw, bool) or raw is None:
        raise InputError(f"{where}: annotation has no completed_by user")
    if isinstance(raw, int):
        return users.get(raw, f"ls-user-{raw}")
    if isinstance(raw, str) and raw:
        return raw
    raise InputError(f"{where}: cannot read completed_by {raw!r}")


def _number(value: Mapping[str, Any], name: str, where: str) -> float:
    raw = value.get(name)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise InputError(f"{where}: rectangle {name!r} is {raw!r}, not a number")
    return float(raw)


def _read_box(item: Mapping[str, Any], data: Mapping[str, Any], where: str) -> Box:
    value = item.get("value")
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: rectanglelabels result has no value")
    if float(value.get("rotation") or 0) != 0:
        raise InputError(f"{where}: rotated boxes are not supported")
    names = value.get("rectanglelabels")
    if not isinstance(names, list) or len(names) != 1 or not isinstance(names[0], str):
        raise InputError(f"{where}: a box needs exactly one label, got {names!r}")
    width = item.get("original_width", data.get("width"))
    height = item.get("original_height", data.get("height"))
    sx = float(width) / 100.0 if isinstance(width, int | float) and width > 0 else 1.0
    sy = float(height) / 100.0 if isinstance(height, int | float) and height > 0 else 1.0
    x, y = _number(value, "x", where) * sx, _number(value, "y", where) * sy
    w, h = _number(value, "width", where) * sx, _number(value, "height", where) * sy
    try:
        return Box(x=x, y=y, w=w, h=h, label=names[0], score=float(item.get("score") or 1.0))
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _read_annotation(
    ann: Any, task: Mapping[str, Any], users: Mapping[int, str], from_name: str | None, where: str
) -> LSAnnotation | None:
    if not isinstance(ann, Mapping):
        raise InputError(f"{where}: an annotation must be an object")
    if ann.get("was_cancelled"):
        return None
    data = task.get("data") or {}
    results = ann.get("result") or []
    if not isinstance(results, list):
        raise InputError(f"{where}: annotation result must be a list")
    label: str | None = None
    boxes: list[Box] = []
    for item in results:
        if not isinstance(item, Mapping):
            raise InputError(f"{where}: a result item must be an object")
        if from_name is not None and item.get("from_name") != from_name:
            continue
        kind = item.get("type")
        if kind == "choices":
            choices = (item.get("value") or {}).get("choices")
            if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], str):
                raise InputError(f"{where}: expected exactly one choice, got {choices!r}")
            label = choices[0]
        elif kind == "rectanglelabels":
            boxes.append(_read_box(item, data, where))
    ls_id = task.get("id")
    try:
        return LSAnnotation(
            task_id=str(data.get("task_id") or f"ls-{ls_id}"),
            ls_task_id=ls_id if isinstance(ls_id, int) else None,
            sample_id=data.get("sample_id"),
            dataset=data.get("dataset"),
            annotation_id=ann.get("id"),
            annotator=_annotator(ann.get("completed_by"), users, where),
            label=label,
            boxes=boxes,
            created_at=ann.get("created_at"),
            lead_time_s=ann.get("lead_time"),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{where}: {field}: {first['msg']}") from None


def parse_export(
    payload: str | bytes | Sequence[Mapping[str, Any]],
    *,
    users: Mapping[int, str] | None = None,
    from_name: str | None = None,
) -> list[LSAnnotation]:
    """People's answers from a Label Studio JSON export (text or parsed),
    cancelled ones skipped. ``users`` names Label Studio user ids (else a
    user object's email, else ``ls-user-<id>``); ``from_name`` keeps only one
    control's results."""
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise InputError(f"Label Studio export is not valid JSON: {exc}") from None
    if not isinstance(payload, list):
        raise InputError("a Label Studio JSON export is a list of tasks")
    out: list[LSAnnotation] = []
    for index, task in enumerate(payload):
        if not isinstance(task, Mapping):
            raise InputError(f"Label Studio task #{index} is not an object")
        where = f"Label Studio task {task.get('id', f'#{index}')}"
        if not isinstance(task.get("data"), Mapping):
            raise InputError(f"{where}: missing its data object")
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            raise InputError(f"{where}: annotations must be a list")
        for ann in annotations:
            read = _read_annotation(ann, task, users or {}, from_name, where)
            if read is not None:
                out.append(read)
    return out
