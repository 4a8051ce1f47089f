"""Annotator pools: who answers queued tasks during a run.

A real deployment has no pool: people answer through a Label Studio import
or ``dataops annotate label``. :class:`SimulatedAnnotators` answers from the
ground truth kept in each sample's metadata, with a chosen accuracy per
annotator; the demo, the fault injections and the active-learning
simulation use it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from app.errors import InputError

if TYPE_CHECKING:
    from pipelines.annotation._queue import AnnotationQueue

__all__ = ["AnnotatorPool", "SimulatedAnnotators", "answer_queue", "digit_images", "write_digits"]


@runtime_checkable
class AnnotatorPool(Protocol):
    """Annotators the pipeline asks during a run. Each annotator answers up to
    ``capacity_per_run`` tasks per run; ``answer`` returns a label, or None
    when that annotator cannot answer this item."""

    names: list[str]
    capacity_per_run: int

    def answer(
        self, annotator: str, sample_id: str, metadata: Mapping[str, Any], labels: Sequence[str]
    ) -> str | None: ...


def _seed_part(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


class SimulatedAnnotators:
    """Annotators that know the truth (``metadata[truth_key]``) and give it with
    probability ``accuracy`` (one figure for everyone, or one per annotator),
    otherwise a wrong label chosen uniformly. Annotators in ``random_answers``
    answer uniformly at random whatever the truth (a fault adds names here).

    An answer depends only on (seed, annotator, sample), so a rerun or a
    re-queued task gets the same answer from the same annotator.
    """

    def __init__(
        self,
        names: Sequence[str],
        accuracy: float | Mapping[str, float] = 0.9,
        *,
        truth_key: str = "label",
        seed: int = 0,
        capacity_per_run: int = 50,
        random_answers: Iterable[str] = (),
    ) -> None:
        self.names = [str(n) for n in names]
        if not self.names or any(not n.strip() for n in self.names):
            raise InputError("an annotator pool needs at least one named annotator")
        if len(set(self.names)) != len(self.names):
            raise InputError(f"annotator names must be distinct, got {self.names}")
        if isinstance(accuracy, Mapping):
            missing = [n for n in self.names if n not in accuracy]
            if missing:
                raise InputError(f"no accuracy given for annotator(s) {', '.join(missing)}")
            self.accuracy = {n: float(accuracy[n]) for n in self.names}
        else:
            self.accuracy = dict.fromkeys(self.names, float(accuracy))
        bad = {n: a for n, a in self.accuracy.items() if not 0.0 <= a <= 1.0}
        if bad:
            raise InputError(f"accuracy must lie in [0, 1], got {bad}")
        if capacity_per_run < 0:
            raise InputError(f"capacity_per_run must be >= 0, got {capacity_per_run}")
        if not truth_key:
            raise InputError("truth_key must name a metadata field")
        self.truth_key = truth_key
        self.seed = int(seed)
        self.capacity_per_run = int(capacity_per_run)
        self.random_answers: set[str] = set(random_answers)

    def __repr__(self) -> str:
        return f"SimulatedAnnotators({self.names}, capacity_per_run={self.capacity_per_run})"

    def _rng(self, annotator: str, sample_id: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, _seed_part(annotator), _seed_part(sample_id)])

    def answer(
        self, annotator: str, sample_id: str, metadata: Mapping[str, Any], labels: Sequence[str]
    ) -> str | None:
        if annotator not in self.accuracy:
            raise InputError(f"{annotator!r} is not in this pool ({', '.join(self.names)})")
        choices = [str(x) for x in labels]
        if not choices:
            return None
        rng = self._rng(annotator, sample_id)
        if annotator in self.random_answers:
            return choices[int(rng.integers(len(choices)))]
        truth = metadata.get(self.truth_key)
        if truth is None:
            return None
        truth = str(truth)
        wrong = [c for c in choices if c != truth]
        if rng.random() < self.accuracy[annotator] or not wrong:
            return truth
        return wrong[int(rng.integers(len(wrong)))]


def answer_queue(
    queue: AnnotationQueue,
    pool: AnnotatorPool,
    *,
    labels: Sequence[str],
    metadata: Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]],
    annotators_per_task: int,
) -> dict[str, int]:
    """Let each annotator of ``pool`` who is not quarantined answer up to
    ``capacity_per_run`` waiting tasks (highest priority first, none they
    answered before). ``metadata`` maps sample ids to their metadata.
    Returns answers given per annotator."""
    given: dict[str, int] = {}
    for name in pool.names:
        if queue.is_quarantined(name):
            continue
        tasks = queue.next_tasks(pool.capacity_per_run, annotator=name, annotators_per_task=annotators_per_task)
        metas = metadata([t.sample_id for t in tasks]) if tasks else {}
        n = 0
        for task in tasks:
            label = pool.answer(name, task.sample_id, metas.get(task.sample_id, {}), labels)
            if label is None:
                continue
            try:
                queue.submit(task.id, name, label=label)
            except InputError:
                break  # quarantined meanwhile, or the task closed under us: this annotator stops
            n += 1
        given[name] = n
    return given


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (8x8 images, 0..16) and targets, read from
    the package's data file: importing sklearn.datasets costs seconds."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is not None and path.is_file():
        data = np.loadtxt(path, delimiter=",")
        return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


def digit_images(n: int, *, offset: int = 0, size: int = 64, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """``n`` of scikit-learn's bundled handwritten digits from ``offset`` on,
    upscaled to ``size`` squared uint8 images with light noise, and their labels."""
    from PIL import Image

    raw, target = _load_digits()
    if n < 0 or offset < 0 or offset + n > len(raw):
        raise InputError(f"there are {len(raw)} digits; cannot take {n} from {offset}")
    rng = np.random.default_rng([seed, offset])
    images: list[np.ndarray] = []
    for pixels in raw[offset : offset + n]:
        small = Image.fromarray((pixels / 16.0 * 255).astype(np.uint8))
        big = np.asarray(small.resize((size, size), Image.Resampling.BILINEAR)).astype(np.int16)
        images.append(np.clip(big + rng.integers(-8, 9, size=big.shape), 0, 255).astype(np.uint8))
    return images, [str(int(t)) for t in target[offset : offset + n]]


def write_digits(
    folder: Path, n: int, *, offset: int = 0, size: int = 64, seed: int = 0, truth_key: str = "label"
) -> dict[str, str]:
    """Write :func:`digit_images` as PNG files plus a ``manifest.jsonl`` that
    puts each true label in the metadata under ``truth_key`` (what ingestion
    reads and :class:`SimulatedAnnotators` answer from). Returns file -> label."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    images, labels = digit_images(n, offset=offset, size=size, seed=seed)
    truth: dict[str, str] = {}
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        name = f"digit_{offset + i:05d}.png"
        Image.fromarray(img).save(folder / name, format="PNG", compress_level=1)
        truth[name] = label
    lines = [json.dumps({"file": name, truth_key: label}) for name, label in truth.items()]
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return truth
