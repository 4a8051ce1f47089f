"""Active-learning simulation on scikit-learn's bundled digits.

What it answers: how many labels does a strategy need, and how good are the
labels that simulated crowds produce. The true digit labels are the ground
truth; each simulated annotator answers correctly with a given probability
and otherwise picks one of the other classes at random. Every bought sample
goes to ``annotators`` people, the majority vote is its label, and a tie
asks one more person (up to ``max_answers``). Each round the image
classifier is retrained on every consensus label so far and picks the next
batch through :func:`select_batch`; a held-out test split measures it, which
gives the learning curve (samples bought -> test accuracy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from app.errors import InputError
from pipelines.annotation._agreement import fleiss_kappa, krippendorff_alpha
from pipelines.annotation._autolabel import ImageClassifier
from pipelines.annotation._consensus import majority_vote
from pipelines.annotation._strategies import STRATEGIES, Strategy, select_batch

__all__ = [
    "DATASETS",
    "CurvePoint",
    "LabelSavings",
    "Comparison",
    "SimulationReport",
    "compare",
    "label_savings",
    "labels_to_reach",
    "mean_curve",
    "simulate",
]

DATASETS = ("digits",)
TEST_SHARE = 0.3


class CurvePoint(BaseModel):
    labels: int = Field(description="Samples bought so far.")
    accuracy: float = Field(description="Test accuracy of the model trained on their consensus labels.")
    cost: float


class SimulationReport(BaseModel):
    dataset: str
    strategy: Strategy
    seed: int
    budget: int
    batch_size: int
    annotators: int
    annotator_accuracy: float
    cost_per_label: float
    pool_size: int
    test_size: int
    labels_bought: int = Field(description="Samples sent to annotators.")
    answers: int = Field(description="Answers paid for, tie-breaks included.")
    tie_breaks: int = Field(description="Extra answers bought because the first ones tied.")
    unresolved: int = Field(description="Samples still tied after max_answers; not used for training.")
    model_accuracy: float = Field(description="Final model's accuracy on the held-out test split.")
    consensus_accuracy: float = Field(description="Share of bought samples whose consensus label is the true one (unresolved ones count as wrong).")
    annotator_accuracy_observed: float
    fleiss_kappa: float | None = Field(description="Over the first `annotators` answers of every sample; None with one annotator.")
    krippendorff_alpha: float | None = Field(description="Nominal, over every answer including tie-breaks; None with one annotator.")
    cost: float
    curve: list[CurvePoint]
    seconds: float

    def labels_to_reach(self, accuracy: float) -> int | None:
        return labels_to_reach(self.curve, accuracy)


def labels_to_reach(curve: Sequence[CurvePoint], accuracy: float) -> int | None:
    """The fewest samples bought after which the curve's accuracy is at least ``accuracy``."""
    for point in curve:
        if point.accuracy >= accuracy - 1e-12:
            return point.labels
    return None


class LabelSavings(BaseModel):
    """How many labels a strategy needs to match a baseline's final accuracy."""

    target_accuracy: float = Field(description="The baseline's final accuracy.")
    baseline_labels: int | None = Field(description="Samples the baseline needed to reach it.")
    labels: int | None = Field(description="Samples the strategy needed; None if it never did.")
    ratio: float | None = Field(description="baseline_labels / labels: how many times fewer labels.")


def label_savings(baseline: Sequence[CurvePoint], other: Sequence[CurvePoint]) -> LabelSavings:
    """Labels-to-reach on two learning curves, at the baseline's final accuracy."""
    if not baseline or not other:
        raise InputError("label_savings needs two non-empty learning curves")
    target = baseline[-1].accuracy
    base, mine = labels_to_reach(baseline, target), labels_to_reach(other, target)
    return LabelSavings(
        target_accuracy=target,
        baseline_labels=base,
        labels=mine,
        ratio=(base / mine) if base is not None and mine else None,
    )


def mean_curve(reports: Sequence[SimulationReport]) -> list[CurvePoint]:
    """The point-wise mean of runs with the same schedule (e.g. several seeds)."""
    if not reports:
        raise InputError("mean_curve needs at least one report")
    xs = [[p.labels for p in r.curve] for r in reports]
    if any(x != xs[0] for x in xs):
        raise InputError("the runs were bought on different schedules; compare them with the same budget and batch size")
    return [
        CurvePoint(
            labels=xs[0][i],
            accuracy=float(np.mean([r.curve[i].accuracy for r in reports])),
            cost=float(np.mean([r.curve[i].cost for r in reports])),
        )
        for i in range(len(xs[0]))
    ]


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and integer labels of a bundled data set (nothing is downloaded)."""
    if name != "digits":
        raise InputError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.images, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64)


def _draw_answers(
    truth: np.ndarray, classes: int, accuracy: float, answers: int, rng: np.random.Generator
) -> np.ndarray:
    """``len(truth) x answers``: every answer each sample would get, in the
    order it would be asked. Right with probability ``accuracy``, else a
    uniformly random other class. Drawn up front per sample, so at one seed
    every strategy meets the same annotator mistakes on the same sample."""
    right = rng.random((len(truth), answers)) < accuracy
    shift = rng.integers(1, classes, size=(len(truth), answers))
    drawn: np.ndarray = np.where(right, truth[:, None], (truth[:, None] + shift) % classes)
    return drawn


def simulate(
    dataset: str = "digits",
    *,
    budget: int = 500,
    strategy: Strategy = "uncertainty",
    annotators: int = 3,
    annotator_accuracy: float = 0.85,
    batch_size: int = 20,
    seed: int = 0,
    cost_per_label: float = 1.0,
    max_answers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Buy ``budget`` samples ``batch_size`` at a time, chosen by ``strategy``;
    ``progress(bought, budget)`` is called after every round."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if budget < 1:
        raise InputError(f"budget must be at least 1, got {budget}")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if annotators < 1:
        raise InputError(f"annotators must be at least 1, got {annotators}")
    if not 0.0 <= annotator_accuracy <= 1.0:
        raise InputError(f"annotator accuracy must be within [0, 1], got {annotator_accuracy}")
    if cost_per_label < 0:
        raise InputError(f"cost per label must not be negative, got {cost_per_label}")
    max_answers = max_answers if max_answers is not None else 2 * annotators + 1
    if max_answers < annotators:
        raise InputError(f"max_answers ({max_answers}) must be at least annotators ({annotators})")
    import torch  # noqa: F401  # a one-time cost of the process, kept out of the run's seconds

    images, target = load_dataset(dataset)
    started = time.perf_counter()
    classes = int(target.max()) + 1
    names = [str(c) for c in range(classes)]
    # Separate streams: the split is the same for every strategy at one seed,
    # and a strategy's own random draws do not shift the annotators' noise.
    split_rng, crowd_rng, rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    order = split_rng.permutation(len(target))
    n_test = int(round(len(target) * TEST_SHARE))
    test, pool = order[:n_test], order[n_test:]
    if budget > len(pool):
        raise InputError(f"budget {budget} exceeds the {len(pool)} samples in the {dataset} pool")

    crowd = _draw_answers(target[pool], classes, annotator_accuracy, max_answers, crowd_rng)
    model = ImageClassifier(names, seed=seed, image_size=images.shape[1])
    test_images = images[test]
    bought: list[int] = []  # pool positions, in buying order
    consensus: list[int | None] = []  # per bought sample, its majority label
    answers: list[list[int]] = []  # per bought sample, every answer
    curve: list[CurvePoint] = []
    available = np.ones(len(pool), dtype=bool)

    while len(bought) < budget:
        n = min(batch_size, budget - len(bought))
        candidates = np.flatnonzero(available)
        picks = candidates[_choose(strategy, n, model, images, pool, candidates, bought, rng)]
        available[picks] = False
        for pos in picks:
            given = [int(a) for a in crowd[pos, :annotators]]
            vote = majority_vote([str(a) for a in given])
            while vote.label is None and len(given) < max_answers:  # a tie asks one more person
                given.append(int(crowd[pos, len(given)]))
                vote = majority_vote([str(a) for a in given])
            bought.append(int(pos))
            answers.append(given)
            consensus.append(None if vote.label is None else int(vote.label))
        resolved = [i for i, c in enumerate(consensus) if c is not None]
        if resolved:
            model.fit(images[pool[[bought[i] for i in resolved]]], [str(consensus[i]) for i in resolved])
        spent = sum(len(a) for a in answers) * cost_per_label
        accuracy = float(np.mean(model.predict_proba(test_images).argmax(axis=1) == target[test]))
        curve.append(CurvePoint(labels=len(bought), accuracy=accuracy, cost=spent))
        if progress is not None:
            progress(len(bought), budget)

    truth = target[pool[bought]]
    n_answers = sum(len(a) for a in answers)
    first_round = np.array([a[:annotators] for a in answers])
    return SimulationReport(
        dataset=dataset,
        strategy=strategy,
        seed=seed,
        budget=budget,
        batch_size=batch_size,
        annotators=annotators,
        annotator_accuracy=annotator_accuracy,
        cost_per_label=cost_per_label,
        pool_size=len(pool),
        test_size=len(test),
        labels_bought=len(bought),
        answers=n_answers,
        tie_breaks=n_answers - annotators * len(bought),
        unresolved=sum(c is None for c in consensus),
        model_accuracy=curve[-1].accuracy,
        consensus_accuracy=float(np.mean([c == t for c, t in zip(consensus, truth, strict=True)])),
        annotator_accuracy_observed=float(np.mean([x == t for a, t in zip(answers, truth, strict=True) for x in a])),
        fleiss_kappa=_fleiss(first_round, classes),
        krippendorff_alpha=_alpha(answers),
        cost=n_answers * cost_per_label,
        curve=curve,
        seconds=time.perf_counter() - started,
    )


class Comparison(BaseModel):
    """Several strategies over the same seeds: every run, each strategy's mean
    curve, and its label savings against the baseline (when it was run)."""

    baseline: Strategy
    seeds: list[int]
    reports: list[SimulationReport]
    curves: dict[str, list[CurvePoint]]
    savings: dict[str, LabelSavings]


def compare(
    strategies: Sequence[Strategy] = STRATEGIES,
    *,
    seeds: Sequence[int] = (0,),
    baseline: Strategy = "random",
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> Comparison:
    """:func:`simulate` for each strategy and seed (``options`` go to it);
    ``progress(samples bought, samples to buy)`` counts across every run."""
    if not strategies or not seeds:
        raise InputError("compare needs at least one strategy and one seed")
    budget = int(options.get("budget", 500))
    total, done = budget * len(strategies) * len(seeds), 0
    reports: list[SimulationReport] = []
    for strategy in strategies:
        for seed in seeds:
            offset = done

            def step(bought: int, _budget: int, offset: int = offset) -> None:
                if progress is not None:
                    progress(offset + bought, total)

            reports.append(simulate(strategy=strategy, seed=seed, progress=step, **options))
            done += budget
    curves = {s: mean_curve([r for r in reports if r.strategy == s]) for s in dict.fromkeys(strategies)}
    savings = {s: label_savings(curves[baseline], c) for s, c in curves.items()} if baseline in curves else {}
    return Comparison(baseline=baseline, seeds=list(seeds), reports=reports, curves=curves, savings=savings)


def _choose(
    strategy: Strategy,
    n: int,
    model: ImageClassifier,
    images: np.ndarray,
    pool: np.ndarray,
    candidates: np.ndarray,
    bought: list[int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Indices into ``candidates`` for the next batch."""
    if strategy == "random":
        return select_batch("random", n, rng=rng, probs=np.zeros((len(candidates), 1)))
    items = images[pool[candidates]]
    probs = model.predict_proba(items) if model.is_fitted else None
    if strategy == "uncertainty" and probs is None:
        # No model yet: the first batch is a random one.
        return select_batch("random", n, rng=rng, probs=np.zeros((len(candidates), 1)))
    embeddings = labeled = None
    if strategy in ("diversity", "mixed"):
        embeddings = model.embed(items)
        labeled = model.embed(images[pool[bought]]) if bought else None
    return select_batch(strategy, n, rng=rng, probs=probs, embeddings=embeddings, labeled_embeddings=labeled)


def _fleiss(first_round: np.ndarray, classes: int) -> float | None:
    if first_round.shape[1] < 2:
        return None  # agreement needs two raters per sample
    table = np.zeros((len(first_round), classes), dtype=np.int64)
    for c in range(classes):
        table[:, c] = (first_round == c).sum(axis=1)
    return float(fleiss_kappa(table))


def _alpha(answers: list[list[int]]) -> float | None:
    raters = max(len(a) for a in answers)
    if raters < 2:
        return None
    data = np.full((raters, len(answers)), np.nan)
    for unit, given in enumerate(answers):
        data[: len(given), unit] = given
    return float(krippendorff_alpha(data, "nominal"))

