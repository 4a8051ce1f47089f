"""Agreement statistics against the reference implementations, plus the
degenerate inputs where ours must give a defined value or a clear error."""

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from app.errors import InputError
from pipelines.annotation import cohen_kappa, fleiss_kappa, krippendorff_alpha, ratings_table

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def two_raters(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    n = draw(st.integers(2, 40))
    cats = st.sampled_from(["a", "b", "c", "d"])
    return draw(st.lists(cats, min_size=n, max_size=n)), draw(st.lists(cats, min_size=n, max_size=n))


@FAST
@given(two_raters())
def test_cohen_kappa_equals_sklearn(pair: tuple[list[str], list[str]]) -> None:
    a, b = pair
    assume(len(set(a) | set(b)) > 1)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-9)


@st.composite
def count_tables(draw: st.DrawFn) -> np.ndarray:
    subjects = draw(st.integers(1, 25))
    cats = draw(st.integers(2, 5))
    raters = draw(st.integers(2, 7))
    rows = []
    for _ in range(subjects):
        picks = draw(st.lists(st.integers(0, cats - 1), min_size=raters, max_size=raters))
        rows.append(np.bincount(picks, minlength=cats))
    return np.array(rows)


@FAST
@given(count_tables())
def test_fleiss_kappa_equals_statsmodels(table: np.ndarray) -> None:
    assume(np.count_nonzero(table.sum(axis=0)) > 1)
    assert fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(table, method="fleiss"), abs=1e-9)


@st.composite
def reliability(draw: st.DrawFn) -> np.ndarray:
    raters = draw(st.integers(2, 5))
    units = draw(st.integers(2, 20))
    cell = st.one_of(st.none(), st.integers(1, 5))
    grid = [[draw(cell) for _ in range(units)] for _ in range(raters)]
    return np.array([[np.nan if v is None else float(v) for v in row] for row in grid])


@FAST
@given(reliability(), st.sampled_from(["nominal", "ordinal", "interval", "ratio"]))
def test_krippendorff_alpha_equals_reference(data: np.ndarray, level: str) -> None:
    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    assume(pairable.any())
    assume(len(np.unique(data[:, pairable][~np.isnan(data[:, pairable])])) > 1)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)  # type: ignore[arg-type]
    assert krippendorff_alpha(data, level) == pytest.approx(expected, abs=1e-9)  # type: ignore[arg-type]


def test_krippendorff_matches_the_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units.
    nan = np.nan
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(data, "interval") == pytest.approx(0.849, abs=5e-4)


def test_krippendorff_accepts_string_labels_for_nominal_data() -> None:
    numeric = np.array([[1, 2, 1, np.nan], [1, 2, 2, 1]], dtype=float)
    labels = np.array([["cat", "dog", "cat", None], ["cat", "dog", "dog", "cat"]], dtype=object)
    assert krippendorff_alpha(labels) == pytest.approx(krippendorff_alpha(numeric))
    with pytest.raises(InputError, match="numeric"):
        krippendorff_alpha(labels, "interval")


def test_ratings_table_counts_labels_and_skips_missing() -> None:
    table, cats = ratings_table([["cat", "dog", "cat"], ["dog", None, "dog"], ["bird", "bird", "bird"]])
    assert cats == ["bird", "cat", "dog"]
    assert table.tolist() == [[0, 2, 1], [0, 0, 2], [3, 0, 0]]


def test_ratings_table_feeds_fleiss() -> None:
    table, _ = ratings_table([["a", "a", "b"], ["b", "b", "b"], ["a", "b", "a"], ["a", "a", "a"]])
    assert fleiss_kappa(table) == pytest.approx(sm_fleiss_kappa(table, method="fleiss"), abs=1e-12)


def test_perfect_agreement_is_one() -> None:
    assert cohen_kappa(["a", "b", "c"], ["a", "b", "c"]) == pytest.approx(1.0)
    table, _ = ratings_table([["a", "a", "a"], ["b", "b", "b"]])
    assert fleiss_kappa(table) == pytest.approx(1.0)
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3]], "ordinal") == pytest.approx(1.0)


def test_a_single_category_counts_as_full_agreement() -> None:
    assert cohen_kappa(["a", "a"], ["a", "a"]) == 1.0
    assert fleiss_kappa([[3, 0], [3, 0]]) == 1.0
    assert krippendorff_alpha([[2.0, 2.0, np.nan], [2.0, 2.0, 2.0]]) == 1.0


def test_systematic_disagreement_is_negative() -> None:
    assert cohen_kappa(["a", "b", "a", "b"], ["b", "a", "b", "a"]) == pytest.approx(-1.0)


def test_nothing_to_compare_is_an_input_error() -> None:
    with pytest.raises(InputError, match="two or more raters"):
        krippendorff_alpha([[np.nan, 1.0], [2.0, np.nan]])
    with pytest.raises(InputError, match="two or more raters"):
        krippendorff_alpha(np.full((3, 4), np.nan))
    with pytest.raises(InputError, match="at least one"):
        cohen_kappa([], [])
    with pytest.raises(InputError, match="equally long"):
        cohen_kappa(["a"], ["a", "b"])
    with pytest.raises(InputError, match="missing"):
        cohen_kappa(["a", None], ["a", "b"])


def test_fleiss_rejects_tables_it_cannot_score() -> None:
    with pytest.raises(InputError, match="same number of ratings"):
        fleiss_kappa([[2, 1], [1, 1]])
    with pytest.raises(InputError, match="at least 2 ratings"):
        fleiss_kappa([[1, 0], [0, 1]])
    with pytest.raises(InputError, match="non-empty"):
        fleiss_kappa(np.zeros((0, 2)))
    with pytest.raises(InputError, match="whole counts"):
        fleiss_kappa([[1.5, 1.5]])
    with pytest.raises(InputError, match="level of measurement"):
        krippendorff_alpha([[1, 2]], "cardinal")  # type: ignore[arg-type]
