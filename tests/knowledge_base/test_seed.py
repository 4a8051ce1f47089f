"""The shipped seed library and its loader."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from importlib import resources

import pytest

from app.errors import ConfigError
from app.taxonomy import Outcome, Pipeline, RootCause
from knowledge_base import IncidentRecord, load_seed_incidents, parse_seed_incidents

# Root cause -> the playbooks the seed library may use for it.
USUAL_PLAYBOOKS: dict[RootCause, set[str | None]] = {
    RootCause.TRANSIENT_ERROR: {"retry_with_backoff"},
    RootCause.RESOURCE_EXHAUSTION: {"reduce_batch_size"},
    RootCause.CONFIG_ERROR: {"restore_config"},
    RootCause.UPSTREAM_OUTAGE: {"wait_for_upstream"},
    RootCause.SCHEMA_CHANGE: {"pause_and_quarantine"},
    RootCause.DATA_QUALITY: {"pause_and_quarantine"},
    RootCause.DUPLICATE_FLOOD: {"pause_and_quarantine"},
    RootCause.BACKLOG: {"scale_workers", "escalate_only"},
    RootCause.DATA_CORRUPTION: {"rollback_snapshot"},
    RootCause.PII_EXPOSURE: {"pause_and_quarantine"},
    RootCause.DATA_DRIFT: {"escalate_only"},
    RootCause.CODE_DEFECT: {"escalate_only"},
    RootCause.MODEL_DEGRADATION: {"raise_autolabel_threshold", "fallback_model"},
    RootCause.ANNOTATION_QUALITY: {"route_to_expert_review", "quarantine_annotator"},
    RootCause.NO_FAULT: {None},
}


@pytest.fixture(scope="module")
def seed() -> list[IncidentRecord]:
    return load_seed_incidents()


def test_seed_is_shipped_as_package_data() -> None:
    assert resources.files("knowledge_base.seed").joinpath("incidents.yaml").is_file()


def test_seed_loads_and_is_large_enough(seed: list[IncidentRecord]) -> None:
    assert len(seed) >= 48
    assert len({i.id for i in seed}) == len(seed)
    assert all(i.source == "seed" for i in seed)


def test_seed_covers_the_whole_taxonomy(seed: list[IncidentRecord]) -> None:
    causes = Counter(i.root_cause for i in seed)
    assert set(causes) == set(RootCause)
    assert causes[RootCause.NO_FAULT] >= 3
    assert {i.pipeline for i in seed} == set(Pipeline)
    for pipeline in Pipeline:
        assert sum(i.pipeline == pipeline for i in seed) >= 10


def test_seed_dates_span_the_library_period(seed: list[IncidentRecord]) -> None:
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    assert all(start <= i.opened_at < end for i in seed)
    assert {i.opened_at.year for i in seed} == {2025, 2026}


def test_seed_playbooks_follow_root_causes(seed: list[IncidentRecord]) -> None:
    for incident in seed:
        assert incident.playbook in USUAL_PLAYBOOKS[incident.root_cause], incident.id


def test_seed_keeps_failed_remediations(seed: list[IncidentRecord]) -> None:
    outcomes = Counter(i.outcome for i in seed)
    assert outcomes[Outcome.FAILED] + outcomes[Outcome.ROLLED_BACK] >= 6
    failed_playbooks = {i.playbook for i in seed if i.outcome in (Outcome.FAILED, Outcome.ROLLED_BACK)}
    assert len(failed_playbooks) >= 5


GOOD_ENTRY = """
  - id: t-1
    pipeline: ingestion
    opened_at: "2025-03-01T00:00:00Z"
    title: A title
    symptoms: some symptoms
    root_cause: transient_error
    playbook: retry_with_backoff
    decision: auto_fix
    outcome: resolved
"""


def test_parse_reports_the_bad_entry_and_field() -> None:
    bad = GOOD_ENTRY.replace("t-1", "t-2").replace("transient_error", "gremlins")
    with pytest.raises(ConfigError, match=r"incident #2 \(t-2\).*root_cause"):
        parse_seed_incidents("incidents:" + GOOD_ENTRY + bad)


def test_parse_rejects_naive_dates_duplicates_and_bad_shapes() -> None:
    naive = GOOD_ENTRY.replace('"2025-03-01T00:00:00Z"', '"2025-03-01T00:00:00"')
    with pytest.raises(ConfigError, match="opened_at"):
        parse_seed_incidents("incidents:" + naive)
    with pytest.raises(ConfigError, match="repeats the id"):
        parse_seed_incidents("incidents:" + GOOD_ENTRY + GOOD_ENTRY)
    with pytest.raises(ConfigError, match="'incidents' list"):
        parse_seed_incidents("- just a list")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_seed_incidents("incidents: [")
    assert parse_seed_incidents("incidents:" + GOOD_ENTRY)[0].source == "seed"
