"""The drift statistics against scipy and against arithmetic done by hand."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from app.errors import InputError
from pipelines.quality import detect_drift, ks_test, psi, psi_categorical, psi_numeric
from pipelines.quality._drift_stats import (
    binned_counts,
    category_counts,
    chi_square,
    ks_pvalue,
    ks_pvalues,
    ks_statistics,
    quantile_edges,
)

TOL = 1e-12

# Samples with many ties: a few integers, their halves, and arbitrary floats mixed in.
_tied = st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0])
_value = st.one_of(_tied, _tied, st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
_sample = st.lists(_value, min_size=1, max_size=120)


def _assert_same_as_scipy(x: list[float] | np.ndarray, y: list[float] | np.ndarray, method: str = "auto") -> None:
    expected = stats.ks_2samp(x, y, method=method)
    got = ks_test(x, y, method=method)  # type: ignore[arg-type]
    assert abs(got.statistic - float(expected.statistic)) <= TOL, (got, expected)
    if math.isnan(float(expected.pvalue)):  # scipy's asymptotic mode with one value a side
        assert math.isnan(got.p_value), (got, expected)
    else:
        assert abs(got.p_value - float(expected.pvalue)) <= TOL, (got, expected)


# --- KS: property tests ----------------------------------------------------------------
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=_sample, y=_sample)
def test_ks_equals_scipy_on_random_samples(x: list[float], y: list[float]) -> None:
    _assert_same_as_scipy(x, y)


@settings(max_examples=150, deadline=None)
@given(x=_sample, data=st.data())
def test_ks_equals_scipy_on_equal_sizes(x: list[float], data: st.DataObject) -> None:
    # Equal sizes take the exact "outside the square" path, which is computed here, not by scipy.
    y = data.draw(st.lists(_value, min_size=len(x), max_size=len(x)))
    _assert_same_as_scipy(x, y)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n1=st.integers(1, 400),
    n2=st.integers(1, 400),
    shift=st.floats(-1, 1),
    ties=st.booleans(),
    method=st.sampled_from(["auto", "exact", "asymp"]),
)
def test_ks_equals_scipy_on_generated_data(seed: int, n1: int, n2: int, shift: float, ties: bool, method: str) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n1), rng.normal(loc=shift, size=n2)
    if ties:
        x, y = np.round(x * 2) / 2, np.round(y * 2) / 2
    _assert_same_as_scipy(x, y, method)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 300), k=st.integers(1, 6))
def test_detect_drift_block_ks_equals_scipy(seed: int, n: int, k: int) -> None:
    """The path detect_drift takes: several columns of one size sorted and merged as one 2-D block."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 300))
    ref = {f"c{i}": rng.integers(-3, 4, size=n) if i % 2 else rng.normal(size=n) for i in range(k)}
    cur = {f"c{i}": rng.integers(-3, 5, size=m) if i % 2 else rng.normal(0.3, 1.2, size=m) for i in range(k)}
    report = detect_drift(pa.table(ref), pa.table(cur))
    for c in report.columns:
        expected = stats.ks_2samp(ref[c.name], cur[c.name])
        assert c.statistic is not None and c.p_value is not None
        assert abs(c.statistic - float(expected.statistic)) <= TOL
        assert abs(c.p_value - float(expected.pvalue)) <= TOL


# --- KS: the paths scipy switches between --------------------------------------------
@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (10000, 10000, 0.02),  # exact, equal sizes (largest exact)
        (3000, 7000, 0.05),  # exact, unequal sizes
        (10001, 10001, 0.01),  # asymptotic just above the exact limit
        (12000, 15000, 0.03),  # asymptotic, unequal
        (20000, 20000, 0.5),  # asymptotic, p-value underflows to 0
        (40, 40, 0.0),
    ],
)
def test_ks_equals_scipy_on_large_samples(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 + n2)
    _assert_same_as_scipy(rng.normal(size=n1), rng.normal(loc=shift, size=n2))


def test_ks_identical_samples_and_integers() -> None:
    x = np.arange(500) % 7
    assert ks_test(x, x) == (0.0, 1.0)
    _assert_same_as_scipy(np.arange(50) % 3, np.arange(80) % 4)


def test_vectorised_asymptotic_pvalues_equal_scalar_ones() -> None:
    d = np.array([0.001, 0.004, 0.009, 0.02, 0.3])
    stats_, p = ks_pvalues(d, 30000, 30000)
    for i, v in enumerate(d):
        assert p[i] == ks_pvalue(float(v), 30000, 30000).p_value
        assert stats_[i] == v


def test_ks_statistics_matches_scipy_per_row() -> None:
    rng = np.random.default_rng(3)
    xs = np.sort(np.round(rng.normal(size=(5, 200)), 1), axis=1)
    ys = np.sort(np.round(rng.normal(0.2, 1, size=(5, 150)), 1), axis=1)
    got = ks_statistics(xs, ys)
    for i in range(5):
        assert got[i] == float(stats.ks_2samp(xs[i], ys[i], method="asymp").statistic)


def test_ks_rejects_empty_and_non_numeric() -> None:
    with pytest.raises(InputError):
        ks_test([], [1.0])
    with pytest.raises(InputError):
        ks_test([math.nan], [1.0])
    with pytest.raises(InputError):
        ks_test(["a"], ["b"])


# --- PSI: hand-computed ------------------------------------------------------------------
def test_psi_of_counts_by_hand() -> None:
    # shares r = [.5, .3, .2], c = [.3, .3, .4]
    # (.3-.5)·ln(.3/.5) = (-.2)(-0.5108256) = 0.1021651
    # (.3-.3)·ln(1)     = 0
    # (.4-.2)·ln(2)     = (.2)(0.6931472)  = 0.1386294
    assert psi([50, 30, 20], [30, 30, 40]) == pytest.approx(0.2407946, abs=1e-7)


def test_psi_empty_bin_uses_epsilon() -> None:
    # r = [1, 0 → 1e-4], c = [.9, .1]
    # (.9-1)·ln(.9/1)         = (-.1)(-0.1053605)  = 0.0105361
    # (.1-.0001)·ln(.1/.0001) = (.0999)(6.9077553) = 0.6900848
    assert psi([100, 0], [90, 10]) == pytest.approx(0.7006208, abs=1e-7)
    # both sides empty in a bin: that bin adds nothing
    assert psi([100, 0, 0], [90, 10, 0]) == pytest.approx(0.7006208, abs=1e-7)
    # a larger epsilon softens the empty bin: (.1-.01)·ln(.1/.01) = (.09)(2.3025851) = 0.2072327
    assert psi([100, 0], [90, 10], epsilon=0.01) == pytest.approx(0.0105361 + 0.2072327, abs=1e-7)


def test_psi_numeric_quantile_bins_by_hand() -> None:
    # reference 0..99, 4 bins: edges at numpy's linear quantiles 24.75, 49.5, 74.25,
    # so each bin holds 25 reference values: r = [.25, .25, .25, .25].
    # current 50..149: bins 1 and 2 are empty (→ 1e-4), bin 3 holds 50..74 (25), bin 4 75..149 (75):
    # c = [1e-4, 1e-4, .25, .75]
    # bins 1, 2: (1e-4 - .25)·ln(1e-4/.25) = (-.2499)(-7.8240460) = 1.9552291 each
    # bin 3: 0;  bin 4: (.75-.25)·ln(3) = (.5)(1.0986123) = 0.5493061
    expected = 2 * 1.9552291 + 0.5493061
    assert psi_numeric(np.arange(100), np.arange(50, 150), bins=4) == pytest.approx(expected, abs=1e-6)
    assert psi_numeric(np.arange(100), np.arange(100), bins=4) == 0.0


def test_psi_categorical_unseen_category_by_hand() -> None:
    # r = [.5, .5, 0 → 1e-4] over (a, b, c); c = [.4, .4, .2]
    # a, b: (-.1)·ln(.8) = 0.0223144 each;  c: (.2-.0001)·ln(.2/.0001) = (.1999)(7.6009025) = 1.5194204
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 40 + ["b"] * 40 + ["c"] * 20
    assert psi_categorical(ref, cur) == pytest.approx(2 * 0.0223144 + 1.5194204, abs=1e-6)
    assert psi_categorical(ref + [None], ref) == 0.0  # nulls are not a category


def test_quantile_edges_are_numpys_linear_quantiles() -> None:
    rng = np.random.default_rng(5)
    for rows in (rng.normal(size=(4, 1001)), np.round(rng.normal(size=(4, 37)) * 2)):
        xs = np.sort(rows, axis=1)
        expected = np.quantile(xs, np.arange(1, 10) / 10, axis=1).T
        np.testing.assert_allclose(quantile_edges(xs, 10), expected, rtol=0, atol=1e-12)


def test_binned_counts_bins_are_right_closed() -> None:
    xs = np.array([[1.0, 2.0, 2.0, 3.0, 4.0]])
    assert binned_counts(xs, np.array([[2.0, 3.0]])).tolist() == [[3, 1, 1]]


# --- chi-square and categories -----------------------------------------------------------
def test_chi_square_equals_scipy_and_cramers_v() -> None:
    ref, cur = np.array([50, 30, 20]), np.array([30, 30, 40])
    stat, p, v = chi_square(ref, cur)
    expected = stats.chi2_contingency(np.vstack([ref, cur]))
    assert stat == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert v == pytest.approx(math.sqrt(expected.statistic / 200))
    assert chi_square(np.array([5]), np.array([7])) == (0.0, 1.0, 0.0)


def test_category_counts_align_both_sides() -> None:
    cats, ref, cur = category_counts(pa.array(["a", "a", "b", None]), pa.array(["b", "c", "c"]))
    assert cats.to_pylist() == ["a", "b", "c"]
    assert ref.tolist() == [2, 1, 0] and cur.tolist() == [0, 1, 2]
    # different but castable types, and dictionary-encoded columns
    cats, ref, cur = category_counts(pa.array([1, 2, 2], pa.int32()), pa.array([2, 3], pa.int64()))
    assert cats.to_pylist() == [1, 2, 3] and ref.tolist() == [1, 2, 0] and cur.tolist() == [0, 1, 1]
    cats, ref, cur = category_counts(pa.array(["x", "y"]).dictionary_encode(), pa.array(["y", "y"]))
    assert cats.to_pylist() == ["x", "y"] and cur.tolist() == [0, 2]
