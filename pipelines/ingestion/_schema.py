"""Per-dataset schemas: which modalities, which metadata, which hard limits.

A schema is a YAML file, for example::

    name: street_scenes
    modalities: [image, text]
    metadata:
      extra: forbid            # or allow (the default)
      fields:
        label: {type: str, required: true, enum: [car, person, bike]}
        source_camera: {type: str}
        exposure_ms: {type: float, min: 0, max: 1000}
    image: {min_width: 64, min_height: 64, max_aspect_ratio: 4, max_bytes: 20000000}
    audio: {min_seconds: 0.5, max_seconds: 600, sample_rates: [16000, 44100]}
    text: {min_chars: 1, max_chars: 100000}
    quality: {reject_below: 0.5}

Every section is optional except ``name``; unknown keys are errors, so a typo
cannot silently disable a limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from app.errors import InputError, RecordRejected
from app.parsing import load_yaml_mapping, validation_summary
from pipelines.runtime._records import Modality

__all__ = [
    "FieldSpec",
    "MetadataSpec",
    "ImageLimits",
    "AudioLimits",
    "TextLimits",
    "QualitySpec",
    "DatasetSchema",
    "load_schema",
    "parse_schema",
]

_ALL_MODALITIES: tuple[Modality, ...] = ("image", "audio", "text")
_PY_TYPES: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool}
Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One metadata field."""

    type: Literal["str", "int", "float", "bool"] = "str"
    required: bool = False
    enum: list[Scalar] | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        numeric = self.type in ("int", "float")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"min/max apply to int and float fields, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.enum is not None:
            if not self.enum:
                raise ValueError("enum must list at least one value")
            want = _PY_TYPES[self.type]
            for value in self.enum:
                # bool is an int subclass; an int field must not accept True as a value.
                ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
                if want is float and isinstance(value, int) and not isinstance(value, bool):
                    ok = True
                if not ok:
                    raise ValueError(f"enum value {value!r} is not of type {self.type}")
        return self


class MetadataSpec(_Strict):
    fields: dict[str, FieldSpec] = Field(default_factory=dict)
    extra: Literal["allow", "forbid"] = "allow"

    @model_validator(mode="after")
    def _names(self) -> MetadataSpec:
        for name in self.fields:
            if not name.strip():
                raise ValueError("metadata field names must not be empty")
        return self


class ImageLimits(_Strict):
    """Hard limits (a violation rejects the record) plus the scoring target."""

    min_width: Annotated[int, Field(ge=1)] = 1
    min_height: Annotated[int, Field(ge=1)] = 1
    max_aspect_ratio: Annotated[float | None, Field(ge=1.0)] = None
    max_bytes: Annotated[int | None, Field(ge=1)] = None
    # Soft: the short side (px) at which the resolution score reaches 1.
    target_short_side: Annotated[int, Field(ge=1)] = 224


class AudioLimits(_Strict):
    min_seconds: Annotated[float, Field(ge=0.0)] = 0.0
    max_seconds: Annotated[float | None, Field(gt=0.0)] = None
    sample_rates: list[int] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AudioLimits:
        if self.max_seconds is not None and self.max_seconds < self.min_seconds:
            raise ValueError(f"max_seconds ({self.max_seconds}) < min_seconds ({self.min_seconds})")
        if self.sample_rates is not None and (
            not self.sample_rates or min(self.sample_rates) < 1
        ):
            raise ValueError("sample_rates must list positive rates")
        return self


class TextLimits(_Strict):
    min_chars: Annotated[int, Field(ge=0)] = 1
    max_chars: Annotated[int | None, Field(ge=1)] = None

    @model_validator(mode="after")
    def _consistent(self) -> TextLimits:
        if self.max_chars is not None and self.max_chars < self.min_chars:
            raise ValueError(f"max_chars ({self.max_chars}) < min_chars ({self.min_chars})")
        return self


class QualitySpec(_Strict):
    reject_below: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class DatasetSchema(_Strict):
    """What a dataset accepts. Build with :func:`load_schema` or :meth:`default`."""

    name: str = Field(min_length=1)
    modalities: list[Modality] = Field(default_factory=lambda: list(_ALL_MODALITIES))
    metadata: MetadataSpec = Field(default_factory=MetadataSpec)
    image: ImageLimits = Field(default_factory=ImageLimits)
    audio: AudioLimits = Field(default_factory=AudioLimits)
    text: TextLimits = Field(default_factory=TextLimits)
    quality: QualitySpec = Field(default_factory=QualitySpec)

    # The dynamic metadata model, built on first use (schemas are immutable).
    _meta_model: type[BaseModel] | None = PrivateAttr(default=None)

    @field_validator("modalities")
    @classmethod
    def _modalities(cls, value: list[Modality]) -> list[Modality]:
        # A field validator (not a model one) so errors point at "modalities".
        if not value:
            raise ValueError("list at least one of image, audio, text")
        if len(set(value)) != len(value):
            raise ValueError("a modality is listed twice")
        return value

    @classmethod
    def from_yaml(cls, text: str, *, origin: str = "<schema>") -> DatasetSchema:
        """Same as :func:`parse_schema`."""
        return parse_schema(text, origin=origin)

    @classmethod
    def default(cls, name: str) -> DatasetSchema:
        """Permissive: every modality, any metadata, only sanity limits."""
        return cls(name=name)

    def check_modality(self, modality: Modality) -> None:
        if modality not in self.modalities:
            raise RecordRejected(
                "modality_not_allowed",
                f"{modality} is not one of dataset {self.name!r}'s modalities "
                f"({', '.join(self.modalities)})",
            )

    def validate_metadata(self, meta: dict[str, Any]) -> dict[str, Any]:
        """Check and coerce one record's metadata; return the cleaned dict.

        Values are coerced the way pydantic's lax mode does ("3" -> 3 for an
        int field, 1 -> 1.0 for a float). Absent optional fields stay absent.
        Raises ``RecordRejected("schema_violation", ...)``.
        """
        if not isinstance(meta, dict):
            raise RecordRejected("schema_violation", f"metadata must be a mapping, got {type(meta).__name__}")
        if self._meta_model is None:
            self._meta_model = _build_meta_model(self.name, self.metadata)
        try:
            model = self._meta_model.model_validate(meta)
        except ValidationError as exc:
            raise RecordRejected("schema_violation", _one_line(exc, self._field_names())) from None
        return model.model_dump(by_alias=True, exclude_unset=True)

    def _field_names(self) -> dict[str, str]:
        return {f"f{i}": name for i, name in enumerate(self.metadata.fields)}


def _build_meta_model(dataset: str, spec: MetadataSpec) -> type[BaseModel]:
    """A pydantic model for the metadata spec.

    Fields are declared as ``f0, f1, ...`` with the real names as aliases, so
    any key (``json``, ``model_config``, ``_private``) works as a field name.
    """
    definitions: dict[str, Any] = {}
    for i, (name, fs) in enumerate(spec.fields.items()):
        base: Any = _PY_TYPES[fs.type]
        annotated: Any = Annotated[base, Field(ge=fs.min, le=fs.max)]
        if fs.enum is not None:
            allowed = list(fs.enum)
            annotated = Annotated[annotated, AfterValidator(_enum_check(allowed))]
        alias = Field(validation_alias=AliasChoices(name), serialization_alias=name)
        if fs.required:
            definitions[f"f{i}"] = (annotated, alias)
        else:
            optional: Any = annotated | None
            definitions[f"f{i}"] = (
                optional,
                Field(None, validation_alias=AliasChoices(name), serialization_alias=name),
            )
    config = ConfigDict(extra=spec.extra, populate_by_name=False)
    return create_model(f"Metadata_{dataset}", __config__=config, **definitions)  # type: ignore[call-overload, no-any-return]


def _enum_check(allowed: list[Scalar]) -> Any:
    def check(value: Any) -> Any:
        # The value already has the field's type here, and FieldSpec checked the
        # enum's types, so plain membership cannot confuse 1 with True.
        if value not in allowed:
            raise ValueError(f"must be one of {allowed}, got {value!r}")
        return value

    return check


def _one_line(exc: ValidationError, aliases: dict[str, str] | None = None) -> str:
    """``a.b: message; c: message`` from a pydantic error, real field names only."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str((aliases or {}).get(str(p), p)) for p in err["loc"]) or "(root)"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def load_schema(path: str | Path) -> DatasetSchema:
    """Read and validate a schema file; raise ``InputError`` naming file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read schema: {exc}") from None
    return parse_schema(text, origin=str(path))


def parse_schema(text: str, *, origin: str = "<schema>") -> DatasetSchema:
    """Validate schema YAML held in memory (e.g. stored with a dataset).
    ``origin`` names it in the ``InputError`` message, like a file path."""
    raw = load_yaml_mapping(text, origin=origin, what="schema")
    try:
        return DatasetSchema.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{origin}: {validation_summary(exc, root='(root)')}") from None
