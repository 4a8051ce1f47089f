"""The runtime every pipeline shares: runs, stages, checkpoints, quarantine,
events, versioned config and metrics."""

from pipelines.runtime._config import ConfigStore, PipelineConfig, bounds_of, tunable
from pipelines.runtime._events import EventLog, PipelineControl
from pipelines.runtime._jobs import Job, SourceWrapper, SpecWrapper
from pipelines.runtime._metrics import PipelineMetrics
from pipelines.runtime._models import (
    ConfigVersionRow,
    DatasetRow,
    QuarantineRow,
    RecordRow,
    RunEventRow,
    RunRow,
    SampleRow,
    utcnow,
)
from pipelines.runtime._records import Modality, Source, SourceRecord
from pipelines.runtime._runner import Runner
from pipelines.runtime._runtime import MetricValue, Runtime
from pipelines.runtime._spec import PipelineSpec, RunProgress, RunSummary, StageContext
from pipelines.runtime._stages import ACCEPTED, DUPLICATE, QUARANTINED, Item, Stage

__all__ = [
    "ACCEPTED",
    "DUPLICATE",
    "QUARANTINED",
    "ConfigStore",
    "ConfigVersionRow",
    "DatasetRow",
    "EventLog",
    "Item",
    "Job",
    "MetricValue",
    "SourceWrapper",
    "SpecWrapper",
    "Modality",
    "PipelineConfig",
    "PipelineControl",
    "PipelineMetrics",
    "PipelineSpec",
    "QuarantineRow",
    "RecordRow",
    "RunEventRow",
    "RunProgress",
    "RunRow",
    "RunSummary",
    "Runner",
    "Runtime",
    "SampleRow",
    "Source",
    "SourceRecord",
    "Stage",
    "StageContext",
    "bounds_of",
    "tunable",
    "utcnow",
]
