"""Auto-labelers per modality, built on first use from the dataset itself:
its label set is what the raw snapshot's ``label`` metadata holds for that
modality (or what the caller names), and its labelled samples train the
image classifier and, for labeler version 2, calibrate both labelers'
confidences (the text labeler's temperature by its own ``calibrate``, the
image classifier's by 3-fold cross-validation), since an auto-label is
accepted on its confidence alone."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.errors import DataOpsError
from pipelines.enrichment._decode import decode_image_array, decode_utf8
from pipelines.enrichment._source import Plan, parse_metadata
from pipelines.runtime import Runtime

__all__ = ["LabelerSet", "label_of"]

_MAX_TRAIN = 500
_MIN_CALIBRATE = 10
_FOLDS = 3


def label_of(meta: Mapping[str, Any]) -> str | None:
    value = meta.get("label")
    return str(value) if value not in (None, "") else None


class LabelerSet:
    """``get(modality)`` is the labeler for that modality, or None when the
    modality has fewer than two labels or no labeler exists for it."""

    def __init__(
        self,
        rt: Runtime,
        plan: Plan,
        *,
        labels: Mapping[str, Sequence[str]] | None = None,
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        self.rt = rt
        self.plan = plan
        self.labels = {k: list(v) for k, v in (labels or {}).items()}
        self.descriptions = dict(descriptions or {})
        self._built: dict[str, Any] = {}
        self._examples: dict[str, list[tuple[str, str]]] | None = None
        self._lock = threading.Lock()

    def _labelled(self) -> dict[str, list[tuple[str, str]]]:
        """``{modality: [(uri, label)]}`` of the snapshot's labelled samples."""
        if self._examples is None:
            out: dict[str, list[tuple[str, str]]] = {}
            if self.plan.raw_snapshot_id is not None:
                table = self.rt.offline.scan(
                    self.plan.dataset, self.plan.raw_snapshot_id, columns=["modality", "uri", "metadata"]
                )
                for row in table.to_pylist():
                    label = label_of(parse_metadata(row["metadata"]))
                    if label is not None:
                        out.setdefault(row["modality"], []).append((row["uri"], label))
            self._examples = out
        return self._examples

    def label_set(self, modality: str) -> list[str]:
        if modality in self.labels:
            return self.labels[modality]
        counts = Counter(label for _, label in self._labelled().get(modality, []))
        return sorted(counts)

    def get(self, modality: str) -> Any:
        with self._lock:
            if modality not in self._built:
                self._built[modality] = self._build(modality)
            return self._built[modality]

    def _build(self, modality: str) -> Any:
        labels = self.label_set(modality)
        if len(labels) < 2 or modality not in ("image", "text"):
            return None
        if modality == "text":
            return self._text(labels)
        return self._image(labels)

    def _text(self, labels: list[str]) -> Any:
        from pipelines.annotation import TextZeroShotLabeler

        if self.plan.labeler.version == 1:
            return TextZeroShotLabeler({lb: lb for lb in labels})
        labeler = TextZeroShotLabeler({lb: self.descriptions.get(lb) or f"A text about {lb}." for lb in labels})
        examples = [(u, lb) for u, lb in self._labelled().get("text", []) if lb in labels][:_MAX_TRAIN]
        if len(examples) >= _MIN_CALIBRATE:
            texts = [decode_utf8(self.rt.objects.get(u)) for u, _ in examples]
            labeler.calibrate(texts, [lb for _, lb in examples])
        return labeler

    def _image(self, labels: list[str]) -> Any:
        from pipelines.annotation import ImageClassifier, make_labeler

        if self.plan.labeler.version >= 2 and self.rt.settings.clip_model_path is not None:
            wanted = {k: v for k, v in self.descriptions.items() if k in labels}
            return make_labeler(self.rt.settings, "image", labels, wanted)
        clf = ImageClassifier(labels) if self.plan.labeler.version == 1 else ImageClassifier(labels, color="rgb", image_size=24)
        examples = [(u, lb) for u, lb in self._labelled().get("image", []) if lb in labels]
        if len(examples) > _MAX_TRAIN:
            pick = np.random.default_rng(0).choice(len(examples), _MAX_TRAIN, replace=False)
            examples = [examples[int(i)] for i in sorted(pick)]
        images, ys = [], []
        for uri, label in examples:
            try:
                images.append(decode_image_array(self.rt.objects.get(uri)))
            except DataOpsError:
                continue  # an unreadable example trains nothing; the rest still do
            ys.append(label)
        if len(set(ys)) < 2:
            return clf  # untrained: uniform probabilities, nothing is ever auto-accepted
        if self.plan.labeler.version == 1:
            return clf.fit(images, ys)
        if len(ys) < _MIN_CALIBRATE:
            return clf  # too few examples to know how far to trust it
        temperature = _cross_validated_temperature(labels, images, ys, color="rgb", image_size=24)
        return CalibratedLabeler(clf.fit(images, ys), temperature)


class CalibratedLabeler:
    """A classifier's probabilities sharpened or softened by a temperature
    (``softmax(log p / T)``), so that a 0.9 is right about nine times in ten."""

    def __init__(self, inner: Any, temperature: float) -> None:
        self.inner = inner
        self.temperature = float(temperature)
        self.labels: list[str] = list(inner.labels)
        self.model_id = f"{inner.model_id}-t{self.temperature:.2f}"

    def predict_proba(self, items: Sequence[Any]) -> np.ndarray:
        return _tempered(self.inner.predict_proba(items), self.temperature)

    def propose(self, items: Sequence[Any]) -> list[Any]:
        from pipelines.annotation import LabelProposal

        probs = self.predict_proba(items)
        best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
        return [LabelProposal(self.labels[int(j)], float(probs[i, j]), self.model_id) for i, j in enumerate(best)]


def _tempered(probs: np.ndarray, temperature: float) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _cross_validated_temperature(labels: list[str], images: list[np.ndarray], ys: list[str], **options: Any) -> float:
    """The temperature that makes out-of-fold predictions (3 folds) honest:
    a classifier scored on its own training images is always sure of itself."""
    from pipelines.annotation import ImageClassifier
    from pipelines.annotation._autolabel import fit_temperature

    order = np.random.default_rng(0).permutation(len(ys))
    folds = [order[k::_FOLDS] for k in range(_FOLDS)]
    logp: list[np.ndarray] = []
    truth: list[int] = []
    for k, held in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != k])
        if len({ys[int(i)] for i in train}) < 2 or not len(held):
            continue
        clf = ImageClassifier(labels, **options).fit([images[int(i)] for i in train], [ys[int(i)] for i in train])
        probs = clf.predict_proba([images[int(i)] for i in held])
        logp.append(np.log(np.clip(probs, 1e-12, 1.0)))
        truth.extend(labels.index(ys[int(i)]) for i in held)
    if not logp:
        return 1.0
    return fit_temperature(np.concatenate(logp), np.asarray(truth), high=100.0)
