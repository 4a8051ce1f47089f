"""Ingestion: decode checks, schemas, quality scoring and (near-)duplicate detection
for images, audio and text. The modules here are pure building blocks; the
pipeline assembly uses them through the names below."""

from ._decode import (
    AudioInfo,
    DecodedInfo,
    ImageInfo,
    TextInfo,
    decode_audio,
    decode_image,
    decode_record,
    decode_text,
    detect_modality,
)
from ._nearindex import IndexStats, NearDupIndex
from ._phash import (
    from_hex,
    from_signed64,
    hamming,
    phash_bytes,
    phash_image,
    to_hex,
    to_signed,
    to_signed64,
    to_unsigned,
)
from ._quality import QualityReport, score_quality
from ._samples import (
    SAMPLE_SCHEMA_YAML,
    SampleDatasetInfo,
    distinct_images,
    make_images,
    make_sample_dataset,
    synth_image,
)
from ._schema import (
    AudioLimits,
    DatasetSchema,
    FieldSpec,
    ImageLimits,
    MetadataSpec,
    QualitySpec,
    TextLimits,
    load_schema,
    parse_schema,
)

__all__ = [
    # _phash
    "phash_image",
    "phash_bytes",
    "hamming",
    "to_signed64",
    "from_signed64",
    "to_hex",
    "from_hex",
    "to_signed",
    "to_unsigned",
    # _nearindex
    "NearDupIndex",
    "IndexStats",
    # _decode
    "ImageInfo",
    "AudioInfo",
    "TextInfo",
    "DecodedInfo",
    "detect_modality",
    "decode_image",
    "decode_audio",
    "decode_text",
    "decode_record",
    # _schema
    "DatasetSchema",
    "FieldSpec",
    "MetadataSpec",
    "ImageLimits",
    "AudioLimits",
    "TextLimits",
    "QualitySpec",
    "load_schema",
    "parse_schema",
    # _quality
    "QualityReport",
    "score_quality",
    # _samples
    "SampleDatasetInfo",
    "make_sample_dataset",
    "make_images",
    "distinct_images",
    "synth_image",
    "SAMPLE_SCHEMA_YAML",
]

# The pipeline, its sources, and ingestion as a service.
from ._pipeline import SAMPLE_SCHEMA, IngestionConfig, IngestionPipeline
from ._service import MANIFEST_COLUMNS, dataset_schema, export_manifest, ingest, ingestion_job
from ._sources import FolderSource, JsonlEventSource, encode_event, open_source
from ._streams import NatsJetStreamSource, RedisStreamSource, publish_nats, publish_redis

__all__ += [
    "SAMPLE_SCHEMA",
    "IngestionConfig",
    "IngestionPipeline",
    "MANIFEST_COLUMNS",
    "dataset_schema",
    "export_manifest",
    "ingest",
    "ingestion_job",
    "FolderSource",
    "JsonlEventSource",
    "NatsJetStreamSource",
    "RedisStreamSource",
    "open_source",
    "encode_event",
    "publish_nats",
    "publish_redis",
]
