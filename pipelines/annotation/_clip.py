"""CLIP zero-shot image labels from a local checkpoint folder.

Used only when ``DATAOPS_CLIP_MODEL_PATH`` names a folder holding a
transformers CLIP checkpoint (``config.json``, weights, tokenizer and
preprocessor files). Nothing is ever downloaded: a missing or unreadable
folder is a configuration error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ConfigError, InputError
from pipelines.annotation._autolabel import LabelProposal, _check_labels, proposals, softmax

__all__ = ["ClipLabeler", "load_clip"]


def load_clip(checkpoint: Path) -> tuple[Any, Any]:
    """A CLIP model and processor from a local checkpoint folder, never a
    download; ConfigError when the folder does not hold one."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers import CLIPModel, CLIPProcessor

    try:
        model = CLIPModel.from_pretrained(str(checkpoint), local_files_only=True)
        processor = CLIPProcessor.from_pretrained(str(checkpoint), local_files_only=True)
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise ConfigError(f"cannot load a CLIP checkpoint from {checkpoint}: {exc}") from exc
    return model, processor


class ClipLabeler:
    """Image-text similarity of each image to one prompt per label, softmaxed
    with CLIP's own learned logit scale. The model loads on first use."""

    def __init__(
        self,
        checkpoint_dir: Path,
        labels: Sequence[str],
        *,
        descriptions: Mapping[str, str] | None = None,
        prompt: str = "a photo of a {}",
        batch_size: int = 32,
    ) -> None:
        self.labels = _check_labels(labels)
        self.checkpoint_dir = Path(checkpoint_dir).expanduser()
        _check_checkpoint(self.checkpoint_dir)
        given = dict(descriptions or {})
        self.prompts = [given.get(lb) or prompt.format(lb) for lb in self.labels]
        self.batch_size = max(1, batch_size)
        self.model_id = f"clip:{self.checkpoint_dir.name}"
        self._model: Any = None
        self._processor: Any = None
        self._text: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch

        model, processor = load_clip(self.checkpoint_dir)
        model.eval()
        with torch.no_grad():
            tokens = processor(text=self.prompts, return_tensors="pt", padding=True)
            text = _features(model.get_text_features(**tokens))
        self._text = text / text.norm(dim=-1, keepdim=True)
        self._model, self._processor = model, processor

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        import torch

        images = [_as_pil(x, i) for i, x in enumerate(items)]
        if not images:
            return np.zeros((0, len(self.labels)))
        self._load()
        out = []
        with torch.no_grad():
            scale = float(self._model.logit_scale.exp())
            for start in range(0, len(images), self.batch_size):
                pixels = self._processor(images=images[start : start + self.batch_size], return_tensors="pt")
                feats = _features(self._model.get_image_features(**pixels))
                feats = feats / feats.norm(dim=-1, keepdim=True)
                out.append((scale * feats @ self._text.T).double().numpy())
        return softmax(np.concatenate(out))

    def propose(self, items: Sequence[Any]) -> list[LabelProposal]:
        return proposals(self.predict_proba(items), self.labels, self.model_id)


def _features(out: Any) -> Any:
    # Newer transformers return a model output object rather than a tensor.
    return getattr(out, "pooler_output", out) if not hasattr(out, "norm") else out


def _check_checkpoint(path: Path) -> None:
    if not path.is_dir():
        raise ConfigError(f"CLIP checkpoint folder {path} does not exist (DATAOPS_CLIP_MODEL_PATH)")
    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a CLIP checkpoint: no config.json (DATAOPS_CLIP_MODEL_PATH)")
    if not any((path / name).is_file() for name in ("model.safetensors", "pytorch_model.bin")) and not any(
        path.glob("model-*.safetensors")
    ):
        raise ConfigError(f"{path} is not a CLIP checkpoint: no model weights (DATAOPS_CLIP_MODEL_PATH)")


def _as_pil(item: Any, i: int) -> Any:
    from PIL import Image

    if isinstance(item, Image.Image):
        return item.convert("RGB")
    a = np.asarray(item)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise InputError(f"item #{i} has shape {a.shape}; expected HxW or HxWxC")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = ((a - lo) / max(hi - lo, 1e-9) * 255).round().astype(np.uint8)
    return Image.fromarray(a).convert("RGB")
