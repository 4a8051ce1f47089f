"""detect_drift on constructed data: shifted columns are flagged, stable ones are not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from app.errors import InputError
from pipelines.quality import DriftConfig, DriftReport, detect_drift, expand_metadata, prepare_frame

N = 20_000


def _frames(seed_ref: int = 1, seed_cur: int = 2) -> tuple[pa.Table, pa.Table]:
    """Reference and current: the first four columns drift, the rest are the same distributions."""
    r, c = np.random.default_rng(seed_ref), np.random.default_rng(seed_cur)
    missing = c.normal(10, 2, size=N)
    missing[c.random(N) < 0.25] = np.nan
    ref = pa.table(
        {
            "mean_shift": r.normal(0, 1, N),
            "scaled": r.normal(0, 1, N),
            "camera": r.choice(["canon", "nikon", "sony"], N, p=[0.5, 0.3, 0.2]),
            "exposure": r.normal(10, 2, N),
            "stable_normal": r.normal(5, 3, N),
            "stable_expon": r.exponential(2.0, N),
            "stable_ints": r.integers(0, 10, N),
            "stable_cat": r.choice(["a", "b", "c", "d"], N, p=[0.4, 0.3, 0.2, 0.1]),
            "stable_flag": r.random(N) < 0.3,
        }
    )
    cur = pa.table(
        {
            "mean_shift": c.normal(0.6, 1, N),
            "scaled": c.normal(0, 2, N),
            "camera": c.choice(["canon", "nikon", "sony", "fuji"], N, p=[0.35, 0.3, 0.2, 0.15]),
            "exposure": missing,  # same values, a quarter of them missing
            "stable_normal": c.normal(5, 3, N),
            "stable_expon": c.exponential(2.0, N),
            "stable_ints": c.integers(0, 10, N),
            "stable_cat": c.choice(["a", "b", "c", "d"], N, p=[0.4, 0.3, 0.2, 0.1]),
            "stable_flag": c.random(N) < 0.3,
        }
    )
    return ref, cur


@pytest.fixture(scope="module")
def report() -> DriftReport:
    ref, cur = _frames()
    return detect_drift(ref, cur)


def test_shifted_mean_is_flagged(report: DriftReport) -> None:
    c = report.column("mean_shift")
    assert c.kind == "numeric" and c.test == "ks" and c.drifted and c.severity == "critical"
    assert c.mean_shift == pytest.approx(0.6, abs=0.05) and c.std_shift == pytest.approx(0, abs=0.05)
    assert c.statistic is not None and c.statistic > 0.2 and c.p_value is not None and c.p_value < 1e-10
    assert any(r.startswith("KS D") for r in c.reasons) and any(r.startswith("PSI") for r in c.reasons)


def test_scaled_variance_is_flagged(report: DriftReport) -> None:
    c = report.column("scaled")
    assert c.drifted and c.severity == "critical"
    assert c.std_shift == pytest.approx(1.0, abs=0.05) and abs(c.mean_shift or 0) < 0.05
    assert c.psi is not None and c.psi > 0.25


def test_new_category_is_flagged(report: DriftReport) -> None:
    c = report.column("camera")
    assert c.kind == "categorical" and c.test == "chi2" and c.drifted
    assert c.new_categories == ["fuji"]
    assert c.psi is not None and c.psi > 0.25  # the unseen category gets the epsilon share in the reference
    assert c.p_value is not None and c.p_value < 1e-10 and c.effect is not None and c.effect > 0.1


def test_missing_rate_jump_is_flagged_even_when_values_look_the_same(report: DriftReport) -> None:
    c = report.column("exposure")
    assert c.missing_ref == 0 and c.missing_cur == pytest.approx(0.25, abs=0.01)
    assert c.drifted and c.severity == "critical"
    # the non-missing values are the same distribution: no distribution rule fired
    assert c.p_value is not None and c.p_value > 0.01 and (c.psi or 0) < 0.1
    assert c.reasons == [f"missing rate 0.0% → {c.missing_cur:.1%}"]


def test_stable_columns_are_not_flagged(report: DriftReport) -> None:
    stable = [c for c in report.columns if c.name.startswith("stable_")]
    assert len(stable) == 5
    for c in stable:
        assert not c.drifted and c.severity == "none" and c.reasons == [], c
        assert (c.psi or 0) < 0.01
    assert report.column("stable_flag").kind == "categorical"


def test_dataset_drift_share(report: DriftReport) -> None:
    assert report.drifted_columns == ["mean_shift", "scaled", "camera", "exposure"]
    assert report.drifted_share == pytest.approx(4 / 9)
    assert not report.dataset_drift  # below the default 0.5
    assert report.severity == "critical"
    ref, cur = _frames()
    lower = detect_drift(ref, cur, config=DriftConfig(dataset_drift_share=0.4))
    assert lower.dataset_drift and lower.drifted_share == pytest.approx(4 / 9)
    only_drifted = detect_drift(ref, cur, columns=["mean_shift", "scaled", "stable_ints"])
    assert only_drifted.dataset_drift and only_drifted.drifted_share == pytest.approx(2 / 3)
    assert [c.name for c in only_drifted.columns] == ["mean_shift", "scaled", "stable_ints"]


def test_report_is_json_with_the_promised_fields(report: DriftReport) -> None:
    data = json.loads(report.model_dump_json())
    for key in ("columns", "drifted_share", "dataset_drift", "label_drift", "reference_rows", "current_rows"):
        assert key in data
    for col in data["columns"]:
        assert {"name", "test", "statistic", "p_value", "psi", "drifted", "severity", "reasons"} <= set(col)


def test_huge_samples_do_not_flag_trivial_shifts() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    ref = pa.table({"x": rng.normal(0, 1, n)})
    cur = pa.table({"x": rng.normal(0.03, 1, n)})  # significant at this size, far below the effect floor
    c = detect_drift(ref, cur).column("x")
    assert c.p_value is not None and c.p_value < 0.05
    assert c.statistic is not None and c.statistic < 0.1
    assert not c.drifted


def test_label_drift() -> None:
    rng = np.random.default_rng(11)
    ref = pa.table({"x": rng.normal(size=N), "label": rng.choice([0, 1, 2], N, p=[0.7, 0.2, 0.1])})
    cur = pa.table({"x": rng.normal(size=N), "label": rng.choice([0, 1, 2], N, p=[0.4, 0.3, 0.3])})
    report = detect_drift(ref, cur, label="label")
    assert [c.name for c in report.columns] == ["x"]  # the label is not a feature
    assert report.label_drift is not None and report.label_drift.kind == "categorical"  # integers, still classes
    assert report.label_drift.drifted and report.label_drift.test == "chi2"
    assert report.drifted_share == 0 and not report.dataset_drift
    same = detect_drift(
        ref, pa.table({"x": ref["x"], "label": rng.permutation(ref["label"].to_numpy())}), label="label"
    )
    assert same.label_drift is not None and not same.label_drift.drifted


def test_absent_and_retyped_columns_are_flagged() -> None:
    ref = pa.table({"a": [1.0, 2.0, 3.0], "gone": [1, 2, 3], "typed": [1, 2, 3]})
    cur = pa.table({"a": [1.0, 2.0, 3.0], "new": ["x", "y", "z"], "typed": ["1", "2", "3"]})
    report = detect_drift(ref, cur)
    assert report.column("gone").missing_cur == 1.0 and report.column("gone").severity == "critical"
    assert report.column("new").missing_ref == 1.0 and report.column("new").drifted
    typed = report.column("typed")
    assert typed.drifted and typed.reasons == ["type changed from int64 to string"]
    assert not report.column("a").drifted


def test_identifiers_and_timestamps_are_skipped_unless_named() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    ref = pa.table({"id": [f"r{i}" for i in range(500)], "at": [now + timedelta(seconds=i) for i in range(500)]})
    cur = pa.table(
        {"id": [f"c{i}" for i in range(500)], "at": [now + timedelta(days=9, seconds=i) for i in range(500)]}
    )
    report = detect_drift(ref, cur)
    assert report.column("id").kind == "identifier" and not report.column("id").drifted
    assert report.column("at").kind == "temporal" and not report.column("at").drifted
    named = detect_drift(ref, cur, columns=["at"])
    assert named.column("at").kind == "numeric" and named.column("at").drifted


def test_small_samples_do_not_flag_on_psi_alone() -> None:
    ref = pa.table({"x": np.arange(50, dtype=float)})
    cur = pa.table({"x": np.arange(50, dtype=float) + 10})
    c = detect_drift(ref, cur).column("x")
    assert c.psi is not None and c.psi >= 0.1 and not c.drifted
    assert any("not judged" in r for r in c.reasons)


def test_many_categories_are_pooled() -> None:
    rng = np.random.default_rng(3)
    values = np.array([f"v{i}" for i in range(300)])
    ref = pa.table({"c": rng.choice(values, 5000)})
    cur = pa.table({"c": rng.choice(values, 5000)})
    c = detect_drift(ref, cur, config=DriftConfig(max_categories=50)).column("c")
    assert c.kind == "categorical" and not c.drifted and c.statistic is not None


def test_bad_input() -> None:
    ref, cur = _frames()
    with pytest.raises(InputError, match="nope"):
        detect_drift(ref, cur, columns=["nope"])
    with pytest.raises(InputError, match="label"):
        detect_drift(ref, cur, label="nope")
    with pytest.raises(InputError, match="rows on both sides"):
        detect_drift(ref.slice(0, 0), cur)
    with pytest.raises(InputError, match="pyarrow Table or a pandas DataFrame"):
        detect_drift({"a": [1]}, cur)
    with pytest.raises(ValidationError):
        DriftConfig(psi_warning=0.3, psi_critical=0.2)


def test_pandas_frames() -> None:
    pd = pytest.importorskip("pandas")
    ref, cur = _frames()
    report = detect_drift(ref.to_pandas(), cur.to_pandas())
    assert report.drifted_columns == ["mean_shift", "scaled", "camera", "exposure"]
    assert pd is not None


def test_metadata_is_expanded_and_its_drift_detected() -> None:
    rng = np.random.default_rng(5)

    def meta(iso: np.ndarray, make: np.ndarray) -> list[str]:
        return [json.dumps({"exif": {"iso": int(i)}, "make": str(m)}) for i, m in zip(iso, make, strict=True)]

    n = 2000
    ref = pa.table(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "metadata": meta(rng.choice([100, 200, 400], n), rng.choice(["a", "b"], n)),
        }
    )
    cur = pa.table(
        {
            "sample_id": [f"t{i}" for i in range(n)],
            "metadata": meta(rng.choice([800, 1600], n), rng.choice(["a", "b"], n)),
        }
    )
    eref, ecur = expand_metadata(ref), expand_metadata(cur)
    assert eref.column_names == ["sample_id", "metadata.exif.iso", "metadata.make"]
    report = detect_drift(eref, ecur)
    assert report.column("metadata.exif.iso").drifted
    assert not report.column("metadata.make").drifted
    assert report.column("sample_id").kind == "identifier"


def test_metadata_with_mixed_types_and_bad_rows() -> None:
    table = pa.table({"metadata": ['{"a": 1, "b": "x"}', '{"a": "two"}', None, "not json", "[1, 2]", ""]})
    out = expand_metadata(table)
    assert out.column_names == ["metadata.a", "metadata.b"]
    assert out.column("metadata.a").to_pylist() == ["1", '"two"', None, None, None, None]
    assert out.column("metadata.b").to_pylist() == ["x", None, None, None, None, None]


def test_ingestion_tables_lose_bookkeeping_columns() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    table = pa.table(
        {
            "sample_id": ["a"], "dataset": ["d"], "source": ["s"], "uri": ["u"], "modality": ["image"],
            "sha256": ["h"], "phash": [1], "phash_hex": ["01"], "quality_score": [0.9], "size_bytes": [10],
            "metadata": ['{"camera": "x"}'], "run_id": ["r"], "ingested_at": [now],
        }
    )  # fmt: skip
    assert prepare_frame(table).column_names == ["modality", "quality_score", "size_bytes", "metadata.camera"]
    assert "sample_id" in prepare_frame(table, keep_bookkeeping=True).column_names
