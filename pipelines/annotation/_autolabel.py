"""Auto-labelers: models that propose a label with a confidence.

The annotation pipeline auto-accepts a proposal at or above its threshold
and sends the rest to people, so a confidence must mean what it says: a
0.9 should be right about nine times in ten. The zero-shot text labeler
therefore turns cosine similarities into probabilities with a temperature
that :meth:`TextZeroShotLabeler.calibrate` fits on labelled examples, and
the image classifier is a small torch network trained on the labels bought
so far (retrained as more arrive) whose penultimate features also serve
diversity sampling.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from app.errors import ConfigError, InputError
from pipelines.annotation._image_inputs import Images, image_pixels, single_thread

if TYPE_CHECKING:
    from app.settings import Settings
    from knowledge_base import MiniLMEmbedder

__all__ = [
    "AutoLabeler",
    "ImageClassifier",
    "LabelProposal",
    "TextZeroShotLabeler",
    "make_labeler",
    "softmax",
]

# MiniLM cosine similarities between a text and label descriptions sit in a
# narrow band (roughly 0.0-0.6), so raw similarities need sharpening before a
# softmax; calibrate() found about 0.06 on three dozen labelled support tickets.
DEFAULT_TEXT_TEMPERATURE = 0.06


@dataclass(frozen=True)
class LabelProposal:
    """A model's best label for one item, its probability, and which model said so."""

    label: str
    confidence: float
    model: str


@runtime_checkable
class AutoLabeler(Protocol):
    model_id: str
    labels: list[str]

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        """``len(items) x len(labels)`` probabilities; every row sums to 1."""
        ...

    def propose(self, items: Sequence[Any]) -> list[LabelProposal]:
        """The most probable label for each item."""
        ...


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def proposals(probs: np.ndarray, labels: Sequence[str], model_id: str) -> list[LabelProposal]:
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    return [LabelProposal(labels[int(j)], float(probs[i, j]), model_id) for i, j in enumerate(best)]


def _check_labels(labels: Sequence[str]) -> list[str]:
    out = [str(x) for x in labels]
    if len(out) < 2:
        raise InputError(f"an auto-labeler needs at least two labels, got {out}")
    if len(set(out)) != len(out):
        raise InputError(f"labels must be distinct, got {out}")
    return out


# --------------------------------------------------------------------- text
class TextZeroShotLabeler:
    """Zero-shot text labels: cosine similarity of a text's MiniLM embedding to
    each label's description (or the mean of several descriptions), softmaxed
    with a temperature."""

    def __init__(
        self,
        descriptions: Mapping[str, str | Sequence[str]],
        *,
        embedder: MiniLMEmbedder | None = None,
        temperature: float = DEFAULT_TEXT_TEMPERATURE,
    ) -> None:
        self.labels = _check_labels(list(descriptions))
        if temperature <= 0:
            raise InputError(f"temperature must be positive, got {temperature}")
        self._descriptions = {k: ([v] if isinstance(v, str) else list(v)) for k, v in descriptions.items()}
        for label, texts in self._descriptions.items():
            if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                raise InputError(f"label {label!r} needs a non-empty description")
        self._embedder = embedder
        self._prototypes: np.ndarray | None = None
        self.temperature = float(temperature)
        self.model_id = "minilm-zero-shot"

    @property
    def embedder(self) -> MiniLMEmbedder:
        if self._embedder is None:
            from knowledge_base import get_embedder

            self._embedder = get_embedder()
        return self._embedder

    def _protos(self) -> np.ndarray:
        if self._prototypes is None:
            rows = []
            for label in self.labels:
                v = self.embedder.embed(self._descriptions[label]).mean(axis=0)
                rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
            self._prototypes = np.stack(rows).astype(np.float32)
        return self._prototypes

    def similarities(self, items: Sequence[str]) -> np.ndarray:
        texts = [_as_text(x, i) for i, x in enumerate(items)]
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        sims: np.ndarray = self.embedder.embed(texts) @ self._protos().T
        return sims

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        return softmax(self.similarities(items).astype(np.float64) / self.temperature)

    def propose(self, items: Sequence[Any]) -> list[LabelProposal]:
        return proposals(self.predict_proba(items), self.labels, self.model_id)

    def calibrate(self, items: Sequence[str], labels: Sequence[str]) -> float:
        """Temperature scaling on labelled examples (see :func:`fit_temperature`);
        returns the temperature and keeps it."""
        if len(items) != len(labels) or not items:
            raise InputError("calibrate needs as many labels as items, and at least one")
        unknown = sorted({lb for lb in labels if lb not in self.labels})
        if unknown:
            raise InputError(f"unknown labels {unknown}; known: {self.labels}")
        sims = self.similarities(items).astype(np.float64)
        y = np.array([self.labels.index(lb) for lb in labels])
        self.temperature = fit_temperature(sims, y)
        return self.temperature


def fit_temperature(logits: np.ndarray, y: np.ndarray, *, low: float = 1e-3, high: float = 10.0) -> float:
    """The temperature T minimising the cross-entropy of ``softmax(logits / T)``
    against ``y`` smoothed by Laplace's rule (1 / (n + 2) of the mass spread
    over the other classes): a dozen examples all classified right are not
    evidence for confidences of 1.0, and plain NLL would drive T to zero."""
    from scipy.optimize import minimize_scalar

    n, k = logits.shape
    eps = 1.0 / (n + 2)
    target = np.full((n, k), eps / (k - 1))
    target[np.arange(n), y] = 1.0 - eps

    def loss(log_t: float) -> float:
        z = logits / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-(target * logp).sum(axis=1).mean())

    res = minimize_scalar(loss, bounds=(math.log(low), math.log(high)), method="bounded")
    return float(math.exp(res.x))


def _as_text(item: Any, i: int) -> str:
    if isinstance(item, str):
        return item
    raise InputError(f"item #{i} is {type(item).__name__}; the text labeler takes strings")


# -------------------------------------------------------------------- image
class ImageClassifier:
    """A small MLP over resized, contrast-normalised pixels (CPU, deterministic
    for a seed). :meth:`fit` retrains from scratch on everything labelled so
    far; before the first fit every item gets a uniform distribution, so no
    proposal is ever confident enough to auto-accept."""

    def __init__(
        self,
        labels: Sequence[str],
        *,
        seed: int = 0,
        image_size: int = 16,
        color: Literal["gray", "rgb"] = "gray",
        hidden: int = 128,
        steps: int = 100,
        lr: float = 0.03,
        weight_decay: float = 1e-4,
    ) -> None:
        self.labels = _check_labels(labels)
        if image_size < 2 or hidden < 2 or steps < 1:
            raise InputError("image_size and hidden must be at least 2, steps at least 1")
        self.seed = seed
        self.image_size = image_size
        self.color = color
        self.hidden = hidden
        self.steps = steps
        self.lr = lr
        self.weight_decay = weight_decay
        self.model_id = f"mlp-{color}{image_size}"
        self._net: Any = None
        self._mean: np.ndarray | None = None
        self._std: np.ndarray | None = None
        self.trained_on = 0

    @property
    def is_fitted(self) -> bool:
        return self._net is not None

    @property
    def in_features(self) -> int:
        return self.image_size * self.image_size * (3 if self.color == "rgb" else 1)

    # features ----------------------------------------------------------
    def pixels(self, images: Images) -> np.ndarray:
        """Each image resized to ``image_size`` squared, min-max scaled to [0, 1], flattened."""
        return image_pixels(images, self.image_size, self.color)

    def _build(self) -> Any:
        import torch
        from torch import nn

        with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
            torch.manual_seed(self.seed)
            return nn.Sequential(
                nn.Linear(self.in_features, self.hidden),
                nn.ReLU(),
                nn.Linear(self.hidden, len(self.labels)),
            )

    def _inputs(self, images: Images) -> Any:
        import torch

        assert self._mean is not None and self._std is not None
        x = (self.pixels(images) - self._mean) / self._std
        return torch.from_numpy(x.astype(np.float32))

    # training ----------------------------------------------------------
    def fit(self, images: Images, y: Sequence[str] | np.ndarray) -> ImageClassifier:
        """Train from scratch on ``images`` labelled ``y`` (labels from :attr:`labels`)."""
        import torch
        from torch import nn

        if len(images) != len(y) or not len(images):
            raise InputError("fit needs as many labels as images, and at least one")
        index = {lb: i for i, lb in enumerate(self.labels)}
        unknown = sorted({str(lb) for lb in y if lb not in index})
        if unknown:
            raise InputError(f"unknown labels {unknown}; known: {self.labels}")
        x = self.pixels(images)
        self._mean = x.mean(axis=0)
        self._std = x.std(axis=0) + 0.1  # floor: constant border pixels must not blow up
        target = torch.tensor([index[lb] for lb in y], dtype=torch.long)
        with single_thread():
            net = self._build()
            xt = torch.from_numpy(((x - self._mean) / self._std).astype(np.float32))
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay, foreach=True)
            loss_fn = nn.CrossEntropyLoss()
            # Linear decay to zero: few steps still end on a settled minimum.
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 - step / self.steps)
            gen = torch.Generator().manual_seed(self.seed)
            batch = min(len(xt), 256)
            net.train()
            for _ in range(self.steps):
                if batch < len(xt):
                    pick = torch.randperm(len(xt), generator=gen)[:batch]
                    xb, yb = xt[pick], target[pick]
                else:
                    xb, yb = xt, target
                opt.zero_grad()
                loss_fn(net(xb), yb).backward()
                opt.step()
                sched.step()
            net.eval()
        self._net = net
        self.trained_on = len(y)
        return self

    # inference ---------------------------------------------------------
    def predict_proba(self, items: Images) -> np.ndarray:
        import torch

        n = len(items)
        if not self.is_fitted:
            self.pixels(items)  # still reject what is not an image
            return np.full((n, len(self.labels)), 1.0 / len(self.labels))
        if n == 0:
            return np.zeros((0, len(self.labels)))
        with single_thread(), torch.no_grad():
            logits = self._net(self._inputs(items)).double().numpy()
        return softmax(logits)

    def propose(self, items: Images) -> list[LabelProposal]:
        return proposals(self.predict_proba(items), self.labels, self.model_id)

    def embed(self, images: Images) -> np.ndarray:
        """Penultimate (hidden-layer) features, for diversity sampling. Before
        the first fit: the standardised pixels themselves."""
        import torch

        if not self.is_fitted:
            x = self.pixels(images)
            return (x - x.mean(axis=0)) if len(x) else x
        with single_thread(), torch.no_grad():
            feats = self._net[:-1](self._inputs(images)).numpy()
        out: np.ndarray = feats.astype(np.float32)
        return out

    # persistence -------------------------------------------------------
    def save(self, path: Path) -> None:
        import torch

        if not self.is_fitted:
            raise InputError("nothing to save: the classifier has not been trained")
        assert self._mean is not None and self._std is not None
        state = {
            "labels": self.labels,
            "config": {
                "seed": self.seed,
                "image_size": self.image_size,
                "color": self.color,
                "hidden": self.hidden,
                "steps": self.steps,
                "lr": self.lr,
                "weight_decay": self.weight_decay,
            },
            "trained_on": self.trained_on,
            "mean": torch.from_numpy(self._mean),
            "std": torch.from_numpy(self._std),
            "net": self._net.state_dict(),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, path)
        except OSError as exc:
            raise InputError(f"cannot save the classifier to {path}: {exc.strerror or exc}") from exc

    @classmethod
    def load(cls, path: Path) -> ImageClassifier:
        import torch

        if not path.is_file():
            raise InputError(f"no saved classifier at {path}")
        try:
            state = torch.load(path, weights_only=True)
            clf = cls(state["labels"], **state["config"])
            net = clf._build()
            net.load_state_dict(state["net"])
        except (OSError, RuntimeError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as exc:
            raise InputError(f"{path} is not a saved image classifier: {exc}") from exc
        net.eval()
        clf._net = net
        clf._mean = state["mean"].numpy()
        clf._std = state["std"].numpy()
        clf.trained_on = int(state["trained_on"])
        return clf


# ------------------------------------------------------------------ factory
def make_labeler(
    settings: Settings,
    modality: str,
    labels: Sequence[str],
    descriptions: Mapping[str, str] | None = None,
) -> AutoLabeler:
    """The auto-labeler for a modality: MiniLM zero-shot for text; CLIP for
    images when ``settings.clip_model_path`` names a local checkpoint, else the
    trainable :class:`ImageClassifier`."""
    labels = _check_labels(labels)
    if modality == "text":
        given = dict(descriptions or {})
        missing = [lb for lb in given if lb not in labels]
        if missing:
            raise InputError(f"descriptions for unknown labels {missing}; labels: {labels}")
        return TextZeroShotLabeler({lb: given.get(lb, lb) for lb in labels})
    if modality == "image":
        if settings.clip_model_path is not None:
            from pipelines.annotation._clip import ClipLabeler

            return ClipLabeler(settings.clip_model_path, labels, descriptions=descriptions)
        return ImageClassifier(labels)
    if modality == "audio":
        raise ConfigError("no auto-labeler for audio; annotate audio by hand")
    raise InputError(f"unknown modality {modality!r}; expected text, image or audio")
