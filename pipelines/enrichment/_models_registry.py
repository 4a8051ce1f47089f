"""Which embedding models and auto-labelers enrichment can run, by version.

The config's ``embedding_model_version`` and ``label_model_version`` pick one
entry each; the agents' ``fallback_model`` action sets them to
:meth:`ModelRegistry.previous`. A version needing a CLIP checkpoint exists
only when ``settings.clip_model_path`` is set.

Embedding versions (per record kind):

1. ``descriptor-v1``: images as colour histograms + a 4x4 grid of
   gradient-orientation histograms; texts and captions with MiniLM; audio as
   log-mel statistics.
2. ``descriptor-v2``: as 1, plus the image's 64 pHash bits (the default).
3. ``clip``: images (and text queries against them) with the local CLIP
   checkpoint; texts, captions and audio as in 2. Its cosine dedup compares
   ``descriptor-v2`` signatures, so CLIP only sees what dedup kept.

Versions 1-3 share MiniLM and log-mel: falling back from 2 to 1 changes image
vectors only.

Labeler versions:

1. ``names``: MiniLM zero-shot against the bare label names (texts); a small
   image classifier trained on the dataset's labelled images.
2. ``described``: zero-shot against label descriptions, its temperature
   calibrated on the dataset's labelled texts (at least 10); CLIP zero-shot
   for images when a checkpoint is configured, else the image classifier
   (RGB, 24 px) with a temperature from 3-fold cross-validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.errors import ConfigError, InputError, NotFoundError
from app.settings import Settings

__all__ = ["ModelKind", "ModelVersion", "ModelRegistry", "MODALITIES"]

ModelKind = Literal["embedding", "labeler"]
_KINDS: tuple[ModelKind, ...] = ("embedding", "labeler")

MODALITIES = ("image", "audio", "text")
# Cosine dedup runs before the expensive stages, so it never uses an
# expensive model: a CLIP version's records are compared by descriptor.
_CHEAP_INSTEAD = {"clip": "descriptor-v2"}


@dataclass(frozen=True)
class ModelVersion:
    kind: ModelKind
    version: int
    name: str
    description: str
    # Model per record kind (image, text, caption, audio) for embeddings.
    models: tuple[tuple[str, str], ...] = ()
    needs_clip: bool = False

    def model_for(self, kind: str) -> str | None:
        return dict(self.models).get(kind)

    def signature_model(self, modality: str) -> str:
        """The embedding cosine dedup compares for ``modality``: the version's
        own for it, unless that one is expensive."""
        model = self.model_for(modality)
        if model is None:
            raise KeyError(f"{self.name} has no model for {modality}")
        return _CHEAP_INSTEAD.get(model, model)


_BASE = (("text", "minilm"), ("caption", "minilm"), ("audio", "logmel-v1"))
_VERSIONS: tuple[ModelVersion, ...] = (
    ModelVersion(
        "embedding", 1, "descriptor-v1", "colour + gradient-orientation histograms; MiniLM; log-mel",
        (("image", "descriptor-v1"), *_BASE),
    ),
    ModelVersion(
        "embedding", 2, "descriptor-v2", "descriptor-v1 plus the 64 pHash bits",
        (("image", "descriptor-v2"), *_BASE),
    ),
    ModelVersion(
        "embedding", 3, "clip", "CLIP image embeddings from the local checkpoint",
        (("image", "clip"), *_BASE), needs_clip=True,
    ),
    ModelVersion("labeler", 1, "names", "zero-shot against label names; image classifier (gray, 16 px)"),
    ModelVersion(
        "labeler", 2, "described", "zero-shot against calibrated label descriptions; CLIP or image classifier (RGB, 24 px)"
    ),
)


class ModelRegistry:
    """The model versions available with ``settings``."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.clip_path = settings.clip_model_path if settings is not None else None

    @property
    def kinds(self) -> tuple[ModelKind, ...]:
        return _KINDS

    def _check_kind(self, kind: str) -> None:
        if kind not in _KINDS:
            raise InputError(f"unknown model kind {kind!r}; expected one of {', '.join(_KINDS)}")

    def available(self, m: ModelVersion) -> bool:
        return not m.needs_clip or self.clip_path is not None

    def versions(self, kind: str) -> list[ModelVersion]:
        """Available versions of ``kind``, oldest first."""
        self._check_kind(kind)
        return [m for m in _VERSIONS if m.kind == kind and self.available(m)]

    def get(self, kind: str, version: int) -> ModelVersion:
        self._check_kind(kind)
        for m in _VERSIONS:
            if m.kind == kind and m.version == version:
                if not self.available(m):
                    raise ConfigError(
                        f"{kind} model version {version} ({m.name}) needs a CLIP checkpoint: set DATAOPS_CLIP_MODEL_PATH"
                    )
                return m
        known = ", ".join(str(m.version) for m in self.versions(kind))
        raise NotFoundError(f"no {kind} model version {version} (available: {known})")

    def previous(self, kind: str, version: int) -> int | None:
        """The newest available version older than ``version``, or None."""
        older = [m.version for m in self.versions(kind) if m.version < version]
        return max(older) if older else None

    def latest(self, kind: str) -> int:
        return max(m.version for m in self.versions(kind))
