"""The sample dataset's accounting, replayed with the ingestion building blocks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from app.errors import RecordRejected
from pipelines.ingestion import (
    SAMPLE_SCHEMA_YAML,
    DatasetSchema,
    NearDupIndex,
    SampleDatasetInfo,
    decode_record,
    detect_modality,
    hamming,
    load_schema,
    make_images,
    make_sample_dataset,
    phash_bytes,
    score_quality,
)


def _ingest(folder: Path, files: tuple[str, ...], schema: DatasetSchema) -> dict[str, str]:
    """A minimal ingestion loop: decode -> metadata -> quality -> exact -> near dedup."""
    manifest = {}
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        entry = json.loads(line)
        manifest[entry.pop("file")] = entry
    seen_sha: set[str] = set()
    index = NearDupIndex()
    outcome = {}
    for name in sorted(files):
        data = (folder / name).read_bytes()
        try:
            modality = detect_modality(data, name)
            schema.check_modality(modality)
            info = decode_record(data, modality, with_phash=True)
            schema.validate_metadata(manifest[name])
            report = score_quality(info, schema)
            if not report.passed:
                raise RecordRejected("low_quality", report.summary())
        except RecordRejected as exc:
            outcome[name] = exc.reason
            continue
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen_sha:
            outcome[name] = "duplicate"
            continue
        seen_sha.add(sha)
        if modality == "image":
            assert info.phash is not None  # type: ignore[union-attr]
            if index.nearest(info.phash, 6) is not None:  # type: ignore[union-attr]
                outcome[name] = "duplicate"
                continue
            index.add(name, info.phash)  # type: ignore[union-attr]
        outcome[name] = "accepted"
    return outcome


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleDatasetInfo:
    return make_sample_dataset(tmp_path_factory.mktemp("sample"))


def test_counts_add_up(sample: SampleDatasetInfo) -> None:
    assert (sample.n_images, sample.n_audio, sample.n_text) == (60, 8, 12)
    assert sample.n_accepted == 80
    assert sample.n_files == sample.n_accepted + sample.n_duplicates + sample.n_quarantined
    assert len(sample.exact_duplicates) >= 3 and len(sample.near_duplicates) >= 3
    assert set(sample.rejected.values()) == {
        "decode_error",
        "not_utf8",
        "empty_file",
        "low_quality",
        "unsupported_format",
    }
    on_disk = {p.name for p in sample.folder.iterdir()} - {"manifest.jsonl"}
    assert on_disk == set(sample.files)


def test_manifest_has_one_entry_per_file(sample: SampleDatasetInfo) -> None:
    entries = [json.loads(line) for line in sample.manifest.read_text().splitlines()]
    assert [e["file"] for e in entries] == list(sample.files)
    images = [e for e in entries if e["file"].startswith("img_")]
    assert all(e["label"] and e["source_camera"].startswith("cam_") for e in images)


@pytest.mark.parametrize("use_sample_schema", [False, True])
def test_ingesting_reproduces_the_promised_outcome_for_every_file(
    sample: SampleDatasetInfo, tmp_path: Path, use_sample_schema: bool
) -> None:
    if use_sample_schema:
        (tmp_path / "schema.yaml").write_text(SAMPLE_SCHEMA_YAML)
        schema = load_schema(tmp_path / "schema.yaml")
    else:
        schema = DatasetSchema.default("sample")
    outcome = _ingest(sample.folder, sample.files, schema)
    mismatches = {f: (outcome[f], sample.expected_outcome(f)) for f in sample.files if outcome[f] != sample.expected_outcome(f)}
    assert mismatches == {}


def test_duplicates_point_at_real_originals_and_sort_after_them(sample: SampleDatasetInfo) -> None:
    folder = sample.folder
    for copy, original in sample.exact_duplicates.items():
        assert (folder / copy).read_bytes() == (folder / original).read_bytes()
        assert original < copy
    for variant, original in sample.near_duplicates.items():
        assert (folder / variant).read_bytes() != (folder / original).read_bytes()
        assert hamming(phash_bytes((folder / variant).read_bytes()), phash_bytes((folder / original).read_bytes())) <= 4
        assert original < variant
    kinds = {name.rsplit("_", 1)[1].split(".")[0] for name in sample.near_duplicates}
    assert kinds == {"q55", "small", "bright"}


def test_distinct_images_are_far_apart(sample: SampleDatasetInfo) -> None:
    hashes = [
        phash_bytes((sample.folder / f).read_bytes())
        for f, modality in sample.originals.items()
        if modality == "image"
    ]
    closest = min(hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :])
    assert closest >= 16


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = make_sample_dataset(tmp_path / "a", n_images=6, n_audio=2, n_text=2, seed=3)
    b = make_sample_dataset(tmp_path / "b", n_images=6, n_audio=2, n_text=2, seed=3)
    c = make_sample_dataset(tmp_path / "c", n_images=6, n_audio=2, n_text=2, seed=4)
    assert a.files == b.files
    assert all((a.folder / f).read_bytes() == (b.folder / f).read_bytes() for f in a.files)
    assert any((a.folder / f).read_bytes() != (c.folder / f).read_bytes() for f in a.files if f in c.files)
    assert a.n_files == a.n_accepted + a.n_duplicates + a.n_quarantined


def test_tiny_dataset_without_images_still_accounts(tmp_path: Path) -> None:
    info = make_sample_dataset(tmp_path, n_images=0, n_audio=1, n_text=0)
    assert info.near_duplicates == {} and info.n_accepted == 1
    outcome = _ingest(tmp_path, info.files, DatasetSchema.default("x"))
    assert all(outcome[f] == info.expected_outcome(f) for f in info.files)


def test_make_images_writes_distinct_pngs_and_jpegs(tmp_path: Path) -> None:
    pngs = make_images(tmp_path / "png", 12, size=96, seed=1)
    jpgs = make_images(tmp_path / "jpg", 3, seed=1, fmt="jpeg")
    assert [p.name for p in pngs[:2]] == ["bench_00001.png", "bench_00002.png"]
    assert all(p.suffix == ".jpg" for p in jpgs)
    hashes = [phash_bytes(p.read_bytes()) for p in pngs]
    assert min(hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]) >= 16
