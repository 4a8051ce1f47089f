"""Dataset schemas: loading errors name file and field; metadata validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import DataOpsError, InputError, RecordRejected
from pipelines.ingestion import SAMPLE_SCHEMA_YAML, DatasetSchema, load_schema, parse_schema

FULL = """\
name: street_scenes
modalities: [image, text]
metadata:
  extra: forbid
  fields:
    label: {type: str, required: true, enum: [car, person, bike]}
    source_camera: {type: str}
    exposure_ms: {type: float, min: 0, max: 1000}
    frame: {type: int, min: 0}
    night: {type: bool}
image: {min_width: 64, min_height: 48, max_aspect_ratio: 4, max_bytes: 20000000}
audio: {min_seconds: 0.5, max_seconds: 600, sample_rates: [16000, 44100]}
text: {min_chars: 1, max_chars: 100000}
quality: {reject_below: 0.6}
"""


def _write(tmp_path: Path, text: str, name: str = "schema.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _load_error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text, "bad_schema.yaml")
    with pytest.raises(InputError) as err:
        load_schema(path)
    message = str(err.value)
    assert "bad_schema.yaml" in message
    assert "\n" not in message  # one clear line
    return message


def test_full_schema_loads(tmp_path: Path) -> None:
    schema = load_schema(_write(tmp_path, FULL))
    assert schema.name == "street_scenes"
    assert schema.modalities == ["image", "text"]
    assert schema.metadata.extra == "forbid"
    assert schema.metadata.fields["label"].enum == ["car", "person", "bike"]
    assert schema.image.min_width == 64 and schema.image.max_aspect_ratio == 4
    assert schema.audio.sample_rates == [16000, 44100]
    assert schema.quality.reject_below == 0.6


def test_default_is_permissive() -> None:
    schema = DatasetSchema.default("anything")
    assert schema.modalities == ["image", "audio", "text"]
    assert schema.quality.reject_below == 0.5
    assert schema.validate_metadata({"whatever": [1, 2], "n": 3}) == {"whatever": [1, 2], "n": 3}
    for modality in ("image", "audio", "text"):
        schema.check_modality(modality)  # type: ignore[arg-type]


def test_sample_schema_loads(tmp_path: Path) -> None:
    assert load_schema(_write(tmp_path, SAMPLE_SCHEMA_YAML)).name == "sample"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name: x\nimage: {min_width: -1}\n", "image.min_width"),
        ("name: x\nimage: {min_widht: 10}\n", "image.min_widht"),
        ("name: x\nquality: {reject_below: 1.5}\n", "quality.reject_below"),
        ("name: x\nmodalities: [image, video]\n", "modalities.1"),
        ("name: x\nmodalities: []\n", "modalities"),
        ("modalities: [image]\n", "name"),
        ("name: x\nmetadata: {fields: {age: {type: integer}}}\n", "metadata.fields.age.type"),
        ("name: x\nmetadata: {fields: {age: {type: int, min: 5, max: 1}}}\n", "metadata.fields.age"),
        ("name: x\nmetadata: {fields: {tag: {type: str, min: 1}}}\n", "metadata.fields.tag"),
        ("name: x\nmetadata: {fields: {n: {type: int, enum: [1, two]}}}\n", "metadata.fields.n"),
        ("name: x\nmetadata: {extra: maybe}\n", "metadata.extra"),
        ("name: x\naudio: {min_seconds: 5, max_seconds: 1}\n", "audio"),
        ("name: x\ntext: {min_chars: 10, max_chars: 5}\n", "text"),
        ("name: x\ncolour: red\n", "colour"),
    ],
)
def test_invalid_content_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    message = _load_error(tmp_path, text)
    assert f": {field}:" in message, message


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "name: x\nimage: {min_width: 3\nquality: [\n")
    assert "invalid YAML" in message and "line " in message


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "42\n"])
def test_non_mapping_documents_are_rejected(tmp_path: Path, text: str) -> None:
    assert "mapping" in _load_error(tmp_path, text)


def test_schema_text_from_storage_names_its_origin() -> None:
    text = SAMPLE_SCHEMA_YAML
    assert DatasetSchema.from_yaml(text).name == "sample"
    assert parse_schema(text, origin="dataset 'cars'").name == "sample"
    with pytest.raises(InputError) as err:
        DatasetSchema.from_yaml("name: cars\nimage: {min_width: 0}\n", origin="dataset 'cars'")
    assert str(err.value).startswith("dataset 'cars': image.min_width:")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.yaml"):
        load_schema(tmp_path / "nope.yaml")


def test_several_errors_are_counted_on_one_line(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "name: x\nimage: {min_width: 0, min_height: 0}\n")
    assert "(and 1 more)" in message


# ------------------------------------------------------------------ metadata
@pytest.fixture
def schema(tmp_path: Path) -> DatasetSchema:
    return load_schema(_write(tmp_path, FULL))


def test_valid_metadata_is_coerced_and_returned(schema: DatasetSchema) -> None:
    meta = {"label": "car", "exposure_ms": 12, "frame": "7", "night": "true"}
    assert schema.validate_metadata(meta) == {"label": "car", "exposure_ms": 12.0, "frame": 7, "night": True}
    assert schema.validate_metadata({"label": "bike"}) == {"label": "bike"}  # absent stays absent


@pytest.mark.parametrize(
    ("meta", "needle"),
    [
        ({}, "label"),
        ({"label": "truck"}, "label"),
        ({"label": "car", "exposure_ms": 1000.5}, "exposure_ms"),
        ({"label": "car", "exposure_ms": -1}, "exposure_ms"),
        ({"label": "car", "frame": 1.5}, "frame"),
        ({"label": "car", "source_camera": 3}, "source_camera"),
        ({"label": "car", "unexpected": 1}, "unexpected"),
        ({"label": None}, "label"),
    ],
)
def test_metadata_violations_are_rejected_naming_the_field(
    schema: DatasetSchema, meta: dict[str, object], needle: str
) -> None:
    with pytest.raises(RecordRejected) as err:
        schema.validate_metadata(meta)
    assert err.value.reason == "schema_violation"
    assert err.value.detail.startswith(needle), err.value.detail
    assert isinstance(err.value, DataOpsError)


def test_extra_allow_keeps_unknown_keys(tmp_path: Path) -> None:
    schema = load_schema(_write(tmp_path, "name: x\nmetadata: {fields: {n: {type: int}}}\n"))
    assert schema.validate_metadata({"n": 1, "other": "kept"}) == {"n": 1, "other": "kept"}


def test_awkward_field_names_work(tmp_path: Path) -> None:
    text = "name: x\nmetadata:\n  fields:\n    json: {type: int, required: true}\n    model_config: {type: str}\n"
    schema = load_schema(_write(tmp_path, text))
    assert schema.validate_metadata({"json": 1, "model_config": "a"}) == {"json": 1, "model_config": "a"}
    with pytest.raises(RecordRejected, match="json"):
        schema.validate_metadata({"model_config": "a"})


def test_enum_of_ints_does_not_accept_bool_lookalikes(tmp_path: Path) -> None:
    schema = load_schema(_write(tmp_path, "name: x\nmetadata: {fields: {k: {type: int, enum: [1, 2]}}}\n"))
    assert schema.validate_metadata({"k": 2}) == {"k": 2}
    with pytest.raises(RecordRejected):
        schema.validate_metadata({"k": 3})


def test_non_mapping_metadata_is_a_violation(schema: DatasetSchema) -> None:
    with pytest.raises(RecordRejected, match="mapping"):
        schema.validate_metadata(["label", "car"])  # type: ignore[arg-type]


def test_modality_not_allowed(schema: DatasetSchema) -> None:
    schema.check_modality("image")
    with pytest.raises(RecordRejected) as err:
        schema.check_modality("audio")
    assert err.value.reason == "modality_not_allowed"
    assert "street_scenes" in err.value.detail
