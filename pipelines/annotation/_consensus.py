"""Turning several annotators' answers into one: majority vote for labels,
IoU clustering for boxes, and each annotator's agreement with the result."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.errors import InputError

__all__ = [
    "Vote",
    "majority_vote",
    "Box",
    "iou",
    "aggregate_boxes",
    "AnnotatorQuality",
    "annotator_quality",
]


@dataclass(frozen=True)
class Vote:
    """The majority label (``None`` on a tie for first place), the share of
    answers that chose it, how many did, and whether all answers agreed."""

    label: str | None
    share: float
    votes: int
    unanimous: bool


def majority_vote(labels: Sequence[str]) -> Vote:
    """The label most answers chose; a tie for first place gives ``label=None``."""
    if not labels:
        raise InputError("majority_vote needs at least one answer")
    ranked = Counter(labels).most_common()
    top = ranked[0][1]
    tied = len(ranked) > 1 and ranked[1][1] == top
    return Vote(
        label=None if tied else ranked[0][0],
        share=top / len(labels),
        votes=top,
        unanimous=len(ranked) == 1,
    )


@dataclass(frozen=True)
class Box:
    """An axis-aligned box: top-left corner ``x, y``, width ``w``, height ``h``
    (pixels of the image, or any one unit used throughout), its label, and a
    score (a model's confidence, or the share of annotators behind it)."""

    x: float
    y: float
    w: float
    h: float
    label: str
    score: float = 1.0

    def __post_init__(self) -> None:
        coords = (self.x, self.y, self.w, self.h, self.score)
        if not all(math.isfinite(v) for v in coords):
            raise InputError(f"box {self!r} has a non-finite coordinate or score")
        if self.w < 0 or self.h < 0:
            raise InputError(f"box {self!r} has a negative width or height")
        if not self.label:
            raise InputError("a box needs a label")


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when the union is empty)."""
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def aggregate_boxes(
    per_annotator: Sequence[Sequence[Box]], *, iou_threshold: float = 0.5, min_votes: int | None = None
) -> list[Box]:
    """Consensus boxes from each annotator's boxes for one image.

    Greedy clustering: boxes are taken by score (then annotator order); each
    unclaimed box seeds a cluster and takes from every other annotator their
    unclaimed box of highest IoU with it, if at least ``iou_threshold``. A
    cluster with at least ``min_votes`` boxes (default: a majority of the
    annotators) becomes one box: mean coordinates, the majority label (the
    seed's label on a tie), score = share of annotators behind it.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise InputError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    annotators = len(per_annotator)
    if annotators == 0:
        return []
    needed = annotators // 2 + 1 if min_votes is None else min_votes
    if needed < 1:
        raise InputError(f"min_votes must be at least 1, got {min_votes}")
    flat = [(a, i, box) for a, boxes in enumerate(per_annotator) for i, box in enumerate(boxes)]
    flat.sort(key=lambda t: (-t[2].score, t[0], t[1]))
    claimed: set[tuple[int, int]] = set()
    result: list[Box] = []
    for a, i, seed in flat:
        if (a, i) in claimed:
            continue
        claimed.add((a, i))
        members = [seed]
        for other, boxes in enumerate(per_annotator):
            if other == a:
                continue
            best, best_iou = -1, iou_threshold
            for j, candidate in enumerate(boxes):
                if (other, j) in claimed:
                    continue
                overlap = iou(seed, candidate)
                if overlap >= best_iou:
                    best, best_iou = j, overlap
            if best >= 0:
                claimed.add((other, best))
                members.append(boxes[best])
        if len(members) < needed:
            continue
        counts = Counter(m.label for m in members)
        top = max(counts.values())
        label = seed.label if counts[seed.label] == top else next(lb for lb, c in counts.items() if c == top)
        n = len(members)
        result.append(
            Box(
                x=sum(m.x for m in members) / n,
                y=sum(m.y for m in members) / n,
                w=sum(m.w for m in members) / n,
                h=sum(m.h for m in members) / n,
                label=label,
                score=n / annotators,
            )
        )
    result.sort(key=lambda b: -b.score)
    return result


@dataclass(frozen=True)
class AnnotatorQuality:
    """How often an annotator's label matched the consensus, over how many
    tasks, and whether that is far enough below the others to flag."""

    annotator: str
    agreement: float
    tasks: int
    outlier: bool


def annotator_quality(
    labels: Iterable[tuple[str, str, str]],
    consensus: Mapping[str, str],
    *,
    min_tasks: int = 10,
    gap: float = 0.25,
) -> dict[str, AnnotatorQuality]:
    """Each annotator's agreement with ``consensus`` (task id -> label) over
    the ``(task_id, annotator, label)`` answers on tasks that have one.

    An annotator is an outlier when they answered at least ``min_tasks`` such
    tasks and their agreement is more than ``gap`` below the median of the
    other annotators who also did (a median, so one bad annotator cannot drag
    the bar down for another). Annotators with no consensus task are absent.
    """
    if min_tasks < 1:
        raise InputError(f"min_tasks must be at least 1, got {min_tasks}")
    if not 0.0 <= gap <= 1.0:
        raise InputError(f"gap must be in [0, 1], got {gap}")
    hits: dict[str, int] = defaultdict(int)
    seen: dict[str, int] = defaultdict(int)
    for task_id, annotator, label in labels:
        agreed = consensus.get(task_id)
        if agreed is None:
            continue
        seen[annotator] += 1
        hits[annotator] += int(label == agreed)
    rates = {name: hits[name] / seen[name] for name in seen}
    qualified = {name: rate for name, rate in rates.items() if seen[name] >= min_tasks}
    out: dict[str, AnnotatorQuality] = {}
    for name in sorted(rates):
        others = [rate for other, rate in qualified.items() if other != name]
        outlier = name in qualified and bool(others) and rates[name] < statistics.median(others) - gap
        out[name] = AnnotatorQuality(annotator=name, agreement=rates[name], tasks=seen[name], outlier=outlier)
    return out
