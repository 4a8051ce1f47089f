"""IncidentMemory on real Chroma (embedded, in-memory) with the real MiniLM model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from app.errors import ConfigError, InputError, NotFoundError, StorageError
from app.settings import Settings
from app.taxonomy import Outcome, Pipeline, RootCause
from knowledge_base import IncidentMemory, MiniLMEmbedder, MiniLMEmbeddingFunction, load_seed_incidents

from .conftest import MakeIncident

QUERY = "Reads from S3 time out: botocore ReadTimeoutError while fetching raw images"


def test_record_and_get_round_trip(memory: IncidentMemory, make_incident: MakeIncident) -> None:
    incident = make_incident(playbook=None, seconds_to_resolve=None, tags=[], symptoms="line 1\nline 2")
    memory.record(incident)
    assert memory.count() == 1
    assert memory.get(incident.id) == incident
    with pytest.raises(NotFoundError):
        memory.get("nope")


def test_record_upserts_by_id(memory: IncidentMemory, make_incident: MakeIncident) -> None:
    memory.record(make_incident(outcome=Outcome.FAILED))
    memory.record(make_incident(outcome=Outcome.RESOLVED))
    assert memory.count() == 1
    assert memory.get("inc-1").outcome is Outcome.RESOLVED
    with pytest.raises(InputError):
        memory.record_many([{"id": "x"}])  # type: ignore[list-item]


def test_all_is_oldest_first_and_clear_empties(memory: IncidentMemory, make_incident: MakeIncident) -> None:
    memory.record_many(
        [
            make_incident(id="b", opened_at=datetime(2025, 5, 2, tzinfo=UTC)),
            make_incident(id="a", opened_at=datetime(2025, 5, 1, tzinfo=UTC)),
        ]
    )
    assert [i.id for i in memory.all()] == ["a", "b"]
    memory.clear()
    assert memory.count() == 0 and memory.all() == []
    assert memory.similar(QUERY) == []


def test_recall_ranks_the_similar_incident_first(memory: IncidentMemory, make_incident: MakeIncident) -> None:
    memory.record_many(
        [
            make_incident(id="s3", title="S3 read timeouts", symptoms="ReadTimeoutError on GetObject from s3://raw"),
            make_incident(
                id="oom",
                title="CUDA OOM in embedding stage",
                symptoms="torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
                root_cause=RootCause.RESOURCE_EXHAUSTION,
            ),
            make_incident(
                id="kappa",
                title="Annotator agreement low",
                symptoms="Cohen's kappa 0.4 on batch 17",
                pipeline=Pipeline.ANNOTATION,
                root_cause=RootCause.ANNOTATION_QUALITY,
            ),
        ]
    )
    matches = memory.similar(QUERY, k=3)
    assert [m.incident.id for m in matches][0] == "s3"
    sims = [m.similarity for m in matches]
    assert sims == sorted(sims, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in sims)


def test_similarity_is_one_minus_cosine_distance(
    memory: IncidentMemory, make_incident: MakeIncident, embedder: MiniLMEmbedder
) -> None:
    incident = make_incident()
    memory.record(incident)
    (match,) = memory.similar(QUERY, k=1)
    expected = float(embedder.embed_one(QUERY) @ embedder.embed_one(incident.document))
    assert match.similarity == pytest.approx(expected, abs=1e-3)


def test_before_cutoff_hides_later_incidents(memory: IncidentMemory, make_incident: MakeIncident) -> None:
    early = make_incident(
        id="early",
        opened_at=datetime(2025, 3, 1, tzinfo=UTC),
        title="Object fetch stalls",
        symptoms="connection pool timeouts talking to the object store",
    )
    # The best possible match (the query itself), but it happened later.
    late = make_incident(id="late", opened_at=datetime(2025, 9, 1, tzinfo=UTC), title="S3 timeouts", symptoms=QUERY)
    memory.record_many([early, late])

    assert memory.similar(QUERY, k=5)[0].incident.id == "late"
    cutoff = datetime(2025, 6, 1, tzinfo=UTC)
    assert [m.incident.id for m in memory.similar(QUERY, k=5, before=cutoff)] == ["early"]
    # Strictly before: an incident opened exactly at the cutoff is the present, not the past.
    assert [m.incident.id for m in memory.similar(QUERY, k=5, before=late.opened_at)] == ["early"]
    assert memory.similar(QUERY, k=5, before=datetime(2025, 1, 1, tzinfo=UTC)) == []
    with pytest.raises(InputError, match="timezone"):
        memory.similar(QUERY, before=datetime(2025, 6, 1))


def test_pipeline_filter_self_exclusion_and_min_similarity(
    memory: IncidentMemory, make_incident: MakeIncident
) -> None:
    ingest = make_incident(id="ing")
    annot = make_incident(id="ann", pipeline=Pipeline.ANNOTATION, symptoms="Label Studio export ReadTimeoutError")
    memory.record_many([ingest, annot])
    assert [m.incident.id for m in memory.similar(QUERY, pipeline="annotation")] == ["ann"]
    assert [m.incident.id for m in memory.similar(QUERY, pipeline=Pipeline.INGESTION)] == ["ing"]
    assert "ing" not in [m.incident.id for m in memory.similar(ingest, k=5)]
    assert memory.similar(QUERY, min_similarity=0.999) == []
    with pytest.raises(InputError, match="unknown pipeline"):
        memory.similar(QUERY, pipeline="training")
    with pytest.raises(InputError):
        memory.similar(QUERY, k=0)
    with pytest.raises(InputError):
        memory.similar("   ")


def test_success_rate_is_similarity_weighted(memory: IncidentMemory, make_incident: MakeIncident) -> None:
    query = "Ingest workers crash: no space left on device while writing parquet spill files"
    pb = "reduce_batch_size"
    rc = RootCause.RESOURCE_EXHAUSTION
    memory.record_many(
        [
            # Nearest neighbour, and it failed.
            make_incident(
                id="near-failed",
                title="Parquet spill fills local disk",
                symptoms="OSError: [Errno 28] No space left on device while writing parquet spill files",
                root_cause=rc,
                playbook=pb,
                outcome=Outcome.FAILED,
                opened_at=datetime(2025, 8, 1, tzinfo=UTC),
            ),
            make_incident(
                id="mid-ok",
                title="Node disk pressure during ingest",
                symptoms="kubelet evicted pods: ephemeral-storage low on ingest node",
                root_cause=rc,
                playbook=pb,
            ),
            make_incident(
                id="far-ok",
                title="GPU memory exhausted",
                symptoms="CUDA out of memory in the embedding stage",
                root_cause=rc,
                playbook=pb,
                pipeline=Pipeline.ENRICHMENT,
            ),
            # Neither success nor failure: ignored.
            make_incident(
                id="escalated", symptoms="disk full on ingest node", root_cause=rc, playbook=pb, outcome=Outcome.ESCALATED
            ),
            # Another playbook: ignored.
            make_incident(id="other-pb", symptoms="No space left on device", root_cause=rc, playbook="scale_workers"),
        ]
    )
    sims = {m.incident.id: m.similarity for m in memory.similar(query, k=10)}
    assert max(sims, key=lambda i: sims[i]) == "near-failed"
    expected = (sims["mid-ok"] + sims["far-ok"]) / (sims["near-failed"] + sims["mid-ok"] + sims["far-ok"])

    result = memory.success_rate(query, pb)
    assert result is not None
    rate, n = result
    assert n == 3
    assert rate == pytest.approx(expected, abs=1e-6)
    assert rate < 2 / 3  # the nearest incident failed, so it weighs more than an even vote

    # Before the failure happened, the playbook always worked.
    assert memory.success_rate(query, pb, before=datetime(2025, 7, 1, tzinfo=UTC)) == (pytest.approx(1.0), 2)
    assert memory.success_rate(query, "rollback_snapshot") is None
    assert memory.success_rate(query, pb, k=1) == (0.0, 1)
    with pytest.raises(InputError):
        memory.success_rate(query, "")


def test_ephemeral_memories_are_private(embedder: MiniLMEmbedder, make_incident: MakeIncident) -> None:
    with IncidentMemory.ephemeral(embedder=embedder) as one, IncidentMemory.ephemeral(embedder=embedder) as two:
        one.record(make_incident())
        assert one.count() == 1
        assert two.count() == 0
        assert one.location == "memory"


def test_persists_across_clients(tmp_path: Path, embedder: MiniLMEmbedder, make_incident: MakeIncident) -> None:
    path = tmp_path / "chroma"
    incident = make_incident()
    with IncidentMemory(path, embedder=embedder) as first:
        first.record(incident)
    with IncidentMemory(path, embedder=embedder) as second:
        assert second.count() == 1
        assert second.get(incident.id) == incident
        assert second.similar(QUERY, k=1)[0].incident == incident


def test_seed_if_empty_is_idempotent(tmp_path: Path, embedder: MiniLMEmbedder, make_incident: MakeIncident) -> None:
    path = tmp_path / "chroma"
    expected = len(load_seed_incidents())
    with IncidentMemory(path, embedder=embedder) as first:
        assert first.seed_if_empty() == expected
        assert first.seed_if_empty() == 0
        assert first.count() == expected
        assert {i.source for i in first.all()} == {"seed"}
    with IncidentMemory(path, embedder=embedder) as second:
        assert second.seed_if_empty() == 0
        assert second.count() == expected


def test_seed_if_empty_leaves_a_used_memory_alone(memory: IncidentMemory, make_incident: MakeIncident) -> None:
    memory.record(make_incident(source="live"))
    assert memory.seed_if_empty() == 0
    assert memory.count() == 1


def test_from_settings_uses_the_workspace(settings: Settings, embedder: MiniLMEmbedder) -> None:
    with IncidentMemory.from_settings(settings, embedder=embedder) as mem:
        assert mem.location == str(settings.home / "chroma")
        assert (settings.home / "chroma").is_dir()
        assert mem.collection_name == "incidents"


def test_unreachable_server_is_a_storage_error(settings: Settings) -> None:
    bad = settings.model_copy(update={"chroma_url": "http://127.0.0.1:9"})
    with pytest.raises(StorageError, match="opening the store"):
        IncidentMemory.from_settings(bad)


def test_constructor_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        IncidentMemory()
    with pytest.raises(ConfigError):
        IncidentMemory(tmp_path, url="http://localhost:8000")
    with pytest.raises(ConfigError, match="http"):
        IncidentMemory(url="chroma.internal:8000")
    with pytest.raises(ConfigError, match="port"):
        IncidentMemory(url="http://chroma.internal:notaport")
    with pytest.raises(StorageError):
        IncidentMemory(tmp_path / "c", collection="x")  # Chroma rejects names under 3 characters


def test_refuses_a_collection_with_another_distance(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    path = tmp_path / "chroma"
    client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
    client.create_collection(
        "incidents",
        configuration={"hnsw": {"space": "l2"}},
        embedding_function=MiniLMEmbeddingFunction(embedder),  # type: ignore[arg-type]
    )
    client.close()
    with pytest.raises(StorageError, match="cosine"):
        IncidentMemory(path, embedder=embedder)
