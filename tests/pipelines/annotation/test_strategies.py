"""Active-learning selection on constructed pools where the right order is known."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from app.errors import InputError
from pipelines.annotation import MixShares, k_center_greedy, select_batch, uncertainty_scores
from pipelines.annotation._strategies import split_shares

PROBS = np.array(
    [
        [0.98, 0.01, 0.01],  # confident
        [0.34, 0.33, 0.33],  # as unsure as it gets
        [0.500, 0.495, 0.005],  # a coin flip between two
        [0.70, 0.20, 0.10],
    ]
)


@pytest.mark.parametrize("measure", ["least_confidence", "margin", "entropy"])
def test_each_measure_ranks_the_confident_row_last(measure: str) -> None:
    scores = uncertainty_scores(PROBS, measure)  # type: ignore[arg-type]
    assert scores.shape == (4,)
    assert int(np.argmin(scores)) == 0
    assert np.all((scores >= 0) & (scores <= 1 + 1e-12))


def test_measures_disagree_where_they_should() -> None:
    # margin: the 0.50/0.49 row is closest to a tie; entropy: the flat row is most spread
    assert int(np.argmax(uncertainty_scores(PROBS, "margin"))) == 2
    assert int(np.argmax(uncertainty_scores(PROBS, "entropy"))) == 1
    assert int(np.argmax(uncertainty_scores(PROBS, "least_confidence"))) == 1
    assert uncertainty_scores(np.array([[0.5, 0.5]]), "entropy")[0] == pytest.approx(1.0)


def test_uncertainty_picks_most_uncertain_first() -> None:
    picks = select_batch("uncertainty", 2, rng=np.random.default_rng(0), probs=PROBS, measure="margin")
    assert picks.tolist() == [2, 1]


def test_k_center_picks_far_apart_points() -> None:
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    pool = np.concatenate([c + rng.normal(scale=0.1, size=(25, 2)) for c in centers])
    picks = k_center_greedy(pool, 4)
    assert len(set((picks // 25).tolist())) == 4  # one pick in each cluster


def test_k_center_avoids_what_is_already_labelled() -> None:
    # three tight pairs; the first pair is already labelled
    pool = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [-5.0, 5.0], [-5.1, 5.0]])
    labeled = np.array([[0.05, 0.0]])
    picks = k_center_greedy(pool, 2, labeled=labeled)
    assert sorted(int(p) // 2 for p in picks) == [1, 2]  # one in each pair not yet covered
    unseeded = k_center_greedy(pool, 3)
    assert sorted(int(p) // 2 for p in unseeded) == [0, 1, 2]


def test_k_center_never_repeats_even_with_duplicates() -> None:
    pool = np.ones((5, 3))
    picks = k_center_greedy(pool, 5)
    assert sorted(picks.tolist()) == [0, 1, 2, 3, 4]


def test_asking_for_more_than_the_pool_returns_the_pool() -> None:
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(6, 4))
    probs = rng.dirichlet(np.ones(3), size=6)
    for strategy in ("uncertainty", "diversity", "random", "mixed"):
        picks = select_batch(strategy, 50, rng=rng, probs=probs, embeddings=emb)  # type: ignore[arg-type]
        assert sorted(picks.tolist()) == list(range(6)), strategy


def test_mixed_respects_shares_and_order() -> None:
    rng = np.random.default_rng(3)
    n_pool = 200
    probs = np.tile([0.99, 0.01], (n_pool, 1))
    uncertain_rows = rng.choice(n_pool, size=12, replace=False)
    probs[uncertain_rows] = [0.5, 0.5]
    emb = rng.normal(size=(n_pool, 8))
    picks = select_batch("mixed", 10, rng=rng, probs=probs, embeddings=emb, shares=MixShares())
    assert len(picks) == len(set(picks.tolist())) == 10
    # 6 uncertain first: all of them from the coin-flip rows
    assert set(picks[:6].tolist()) <= set(uncertain_rows.tolist())
    # then 3 diverse, as k-center picks them among the rest anchored on those 6
    rest = np.setdiff1d(np.arange(n_pool), picks[:6])
    expected = rest[k_center_greedy(emb[rest], 3, labeled=emb[picks[:6]])]
    assert picks[6:9].tolist() == expected.tolist()
    assert picks[9] not in picks[:9]


def test_mixed_all_random_matches_the_shares() -> None:
    rng = np.random.default_rng(4)
    emb = rng.normal(size=(30, 3))
    picks = select_batch("mixed", 10, rng=rng, embeddings=emb, shares=MixShares(uncertain=0.0, diverse=0.5, random=0.5))
    assert picks[:5].tolist() == k_center_greedy(emb, 5).tolist()
    assert len(set(picks.tolist())) == 10


def test_mixed_before_a_model_gives_the_uncertain_share_to_diversity() -> None:
    rng = np.random.default_rng(5)
    emb = rng.normal(size=(40, 3))
    picks = select_batch("mixed", 10, rng=rng, embeddings=emb)
    assert picks[:9].tolist() == k_center_greedy(emb, 9).tolist()


def test_split_shares_sums_to_n() -> None:
    assert split_shares(10, MixShares()) == (6, 3, 1)
    assert split_shares(1, MixShares()) == (1, 0, 0)
    for n in range(0, 40):
        assert sum(split_shares(n, MixShares(uncertain=0.34, diverse=0.33, random=0.33))) == n


def test_random_is_reproducible_with_the_same_seed() -> None:
    emb = np.zeros((50, 2))
    a = select_batch("random", 7, rng=np.random.default_rng(9), embeddings=emb)
    b = select_batch("random", 7, rng=np.random.default_rng(9), embeddings=emb)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 7


def test_bad_inputs_are_clear_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValidationError, match="sum to 1"):
        MixShares(uncertain=0.5, diverse=0.5, random=0.5)
    with pytest.raises(InputError, match="needs model probabilities"):
        select_batch("uncertainty", 3, rng=rng, embeddings=np.zeros((4, 2)))
    with pytest.raises(InputError, match="needs embeddings"):
        select_batch("diversity", 3, rng=rng, probs=PROBS)
    with pytest.raises(InputError, match="disagree on the pool size"):
        select_batch("mixed", 3, rng=rng, probs=PROBS, embeddings=np.zeros((5, 2)))
    with pytest.raises(InputError, match="unknown strategy"):
        select_batch("greedy", 3, rng=rng, probs=PROBS)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="dimensions"):
        k_center_greedy(np.zeros((4, 2)), 2, labeled=np.zeros((1, 3)))
    with pytest.raises(InputError, match="non-negative"):
        uncertainty_scores(np.array([[-0.1, 1.1]]))
    assert select_batch("random", 0, rng=rng, probs=PROBS).tolist() == []
