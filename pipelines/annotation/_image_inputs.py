"""Image arrays to model inputs: any size, gray or colour, to fixed-size
contrast-normalised pixel vectors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.errors import InputError

__all__ = ["Images", "image_pixels", "single_thread"]

# A list of HxW / HxWxC arrays, or one stacked n x H x W (x C) array.
Images = Sequence[Any] | np.ndarray


class single_thread:
    """One intra-op thread while the tiny network runs: thread start-up costs
    more than it saves on matrices this small, and the host is shared."""

    def __enter__(self) -> None:
        import torch

        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_num_threads(self._threads)


def image_pixels(images: Images, size: int, color: str) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    channels = 3 if color == "rgb" else 1
    if isinstance(images, np.ndarray) and images.ndim in (3, 4):
        # A stacked array of same-sized images converts in one go.
        groups = [(np.arange(len(images)), _as_chw(images, "the image array", channels))]
    else:
        arrays = [_as_chw(np.asarray(x)[None], f"item #{i}", channels) for i, x in enumerate(images)]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, arr in enumerate(arrays):
            by_shape.setdefault(arr.shape, []).append(i)
        groups = [(np.array(idx), np.concatenate([arrays[i] for i in idx])) for idx in by_shape.values()]
    n = sum(len(idx) for idx, _ in groups)
    out = np.empty((n, size * size * channels), dtype=np.float32)
    for idx, batch in groups:
        if len(idx) and batch.shape[2:] != (size, size):
            t = F.interpolate(torch.from_numpy(batch), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            batch = t.numpy()
        flat = batch.reshape(len(idx), -1)
        lo, hi = flat.min(axis=1, keepdims=True, initial=np.inf), flat.max(axis=1, keepdims=True, initial=-np.inf)
        out[idx] = (flat - lo) / np.maximum(hi - lo, 1e-6)
    return out


def _as_chw(a: np.ndarray, what: str, channels: int) -> np.ndarray:
    """``n x H x W`` or ``n x H x W x C`` (C in 1, 3, 4) -> float32 ``n x channels x H x W``."""
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{what} is not an image array (dtype {a.dtype})")
    if a.ndim == 4 and a.shape[3] in (1, 3, 4):
        a = a[..., :3] if a.shape[3] != 1 else a[..., 0]
    if a.ndim not in (3, 4) or min(a.shape[1:3]) < 1:
        raise InputError(f"{what} has shape {a.shape[1:]}; expected HxW or HxWxC")
    a = a.astype(np.float32, copy=False)
    if a.ndim == 3:
        a = np.repeat(a[:, None], channels, axis=1)
    elif channels == 1:
        a = (a @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[:, None]
    else:
        a = np.moveaxis(a, 3, 1)
    return np.ascontiguousarray(a)
