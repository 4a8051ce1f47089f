"""The tool catalogue: every observe and action tool, with typed arguments,
risk and inverse. What a tool *does* lives in a backend."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import SkipJsonSchema

from guardrails import Risk
from tools._base import ActionTool, Args, InverseStep, ObserveTool, ScopeArgs, Tool, ToolResult
from tools._catalog_ml import FallbackModel, QuarantineAnnotator, Reenrich, ReenrichScope, ReleaseAnnotator

__all__ = ["TOOLS", "OBSERVE_TOOLS", "ACTION_TOOLS", "tool"]


# -- observe ----------------------------------------------------------------
class GetSignalsArgs(ScopeArgs):
    since_t: float = Field(default=0.0, description="Only signals at or after this time (seconds).")
    kinds: list[Literal["event", "metric", "log", "check"]] | None = None
    limit: int = Field(default=200, ge=1, le=2000)
    # The monitor's event cursor (live backend only; not offered to an LLM and
    # left out of the call when unset, so a backend without event ids never
    # sees it): events with a larger id, plus those of the last few seconds
    # before ``since_t`` that committed late and are not in ``seen_event_ids``.
    after_event_id: SkipJsonSchema[int | None] = Field(default=None, ge=0)
    seen_event_ids: SkipJsonSchema[list[int] | None] = None

    @model_serializer(mode="wrap")
    def _drop_unset_cursor(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        for key in ("after_event_id", "seen_event_ids"):
            if out.get(key) is None:
                out.pop(key, None)
        return out


class GetSignals(ObserveTool):
    name = "get_signals"
    description = "Recent events, metrics, logs and check results of a pipeline, oldest first."
    args_model = GetSignalsArgs


class RunStatus(ObserveTool):
    name = "run_status"
    description = "The latest run of a pipeline: status, counts, quarantine reasons, error."
    args_model = ScopeArgs


class GetMetricsArgs(Args):
    name: str = Field(description="Metric name, e.g. dataops_records_quarantined_total.")
    labels: dict[str, str] = Field(default_factory=dict)


class GetMetrics(ObserveTool):
    name = "get_metrics"
    description = "Current values of a metric, optionally filtered by labels."
    args_model = GetMetricsArgs


class GetChecks(ObserveTool):
    name = "get_checks"
    description = "The latest data-quality check results of a pipeline's dataset."
    args_model = ScopeArgs


class GetLogsArgs(ScopeArgs):
    level: Literal["debug", "info", "warning", "error"] = "warning"
    limit: int = Field(default=50, ge=1, le=500)


class GetLogs(ObserveTool):
    name = "get_logs"
    description = "Recent log lines of a pipeline at or above a level."
    args_model = GetLogsArgs


class GetConfig(ObserveTool):
    name = "get_config"
    description = "The pipeline's current config version, its values and each tunable's bounds."
    args_model = ScopeArgs


class ConfigHistory(ObserveTool):
    name = "config_history"
    description = "Every config version: who changed what, when and why, and which were good."
    args_model = ScopeArgs


class RecallArgs(Args):
    query: str
    k: int = Field(default=5, ge=1, le=20)


class RecallIncidents(ObserveTool):
    name = "recall_incidents"
    description = "Past incidents most similar to a description, with root cause, fix and outcome."
    args_model = RecallArgs


# -- act --------------------------------------------------------------------
class RetryStageArgs(ScopeArgs):
    stage: str | None = Field(default=None, description="The failed stage; the run resumes where it stopped.")


class RetryStage(ActionTool):
    name = "retry_stage"
    description = "Run the pipeline's job again; it resumes and skips what is already done."
    args_model = RetryStageArgs
    risk = Risk.LOW
    idempotent = True


class SetConfigArgs(ScopeArgs):
    key: str
    value: float | int | bool | str


class SetConfig(ActionTool):
    name = "set_config"
    description = "Change one tunable, within its bounds."
    args_model = SetConfigArgs
    risk = Risk.MEDIUM
    idempotent = True

    def config_change(self, args: Args) -> tuple[str, Any] | None:
        assert isinstance(args, SetConfigArgs)
        return args.key, args.value

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        assert isinstance(args, SetConfigArgs)
        if old_value is None:
            return None
        return InverseStep(tool="set_config", args={**args.model_dump(), "value": old_value})


class RestoreConfigArgs(ScopeArgs):
    version: int | None = Field(default=None, description="Version to go back to; default the last good one.")


class RestoreConfig(ActionTool):
    name = "restore_config"
    description = "Go back to an earlier config version (default: the last one a run succeeded on)."
    args_model = RestoreConfigArgs
    risk = Risk.MEDIUM
    idempotent = True

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        prev = (result.data or {}).get("previous_version")
        if prev is None:
            return None
        return InverseStep(tool="restore_config", args={**args.model_dump(), "version": prev})


class PausePipeline(ActionTool):
    name = "pause_pipeline"
    description = "Stop the pipeline between batches; nothing is lost, a resume continues."
    args_model = ScopeArgs
    risk = Risk.MEDIUM
    idempotent = True

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        return InverseStep(tool="resume_pipeline", args=args.model_dump())


class ResumePipeline(ActionTool):
    name = "resume_pipeline"
    description = "Let a paused pipeline run again."
    args_model = ScopeArgs
    risk = Risk.MEDIUM
    idempotent = True

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        return InverseStep(tool="pause_pipeline", args=args.model_dump())


class QuarantineBatchArgs(ScopeArgs):
    run_id: str | None = Field(default=None, description="The offending run; default the latest one.")


class QuarantineBatch(ActionTool):
    name = "quarantine_batch"
    description = "Move a run's accepted records to quarantine (bytes kept) so nothing downstream reads them."
    args_model = QuarantineBatchArgs
    risk = Risk.MEDIUM
    idempotent = True


class RollbackTableArgs(ScopeArgs):
    snapshot_id: int | None = Field(default=None, description="Snapshot to go back to; default the last good one.")


class RollbackTable(ActionTool):
    name = "rollback_table"
    description = "Set the dataset's offline table back to an earlier Iceberg snapshot."
    args_model = RollbackTableArgs
    risk = Risk.CRITICAL
    idempotent = True

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        prev = (result.data or {}).get("previous_snapshot_id")
        if prev is None:
            return None
        return InverseStep(tool="rollback_table", args={**args.model_dump(), "snapshot_id": prev})


class ScaleWorkersArgs(ScopeArgs):
    workers: int = Field(ge=1)


class ScaleWorkers(ActionTool):
    name = "scale_workers"
    description = "Set the pipeline's worker count, within bounds."
    args_model = ScaleWorkersArgs
    risk = Risk.MEDIUM
    idempotent = True

    def config_change(self, args: Args) -> tuple[str, Any] | None:
        assert isinstance(args, ScaleWorkersArgs)
        return "workers", args.workers

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        assert isinstance(args, ScaleWorkersArgs)
        if old_value is None:
            return None
        return InverseStep(tool="scale_workers", args={**args.model_dump(), "workers": int(old_value)})


class NotifyArgs(Args):
    pipeline: str
    message: str
    severity: Literal["info", "warning", "critical"] = "info"


class Notify(ActionTool):
    name = "notify"
    description = "Tell people: log it and post to the configured webhook."
    args_model = NotifyArgs
    risk = Risk.LOW
    idempotent = True
    mutating = False


class ProbeSource(ActionTool):
    name = "probe_source"
    description = "Check whether the pipeline's source answers."
    args_model = ScopeArgs
    risk = Risk.LOW
    idempotent = True
    mutating = False


OBSERVE_TOOLS: dict[str, type[Tool]] = {
    t.name: t
    for t in (
        GetSignals,
        RunStatus,
        GetMetrics,
        GetChecks,
        GetLogs,
        GetConfig,
        ConfigHistory,
        RecallIncidents,
        ReenrichScope,
    )
}
ACTION_TOOLS: dict[str, type[ActionTool]] = {
    t.name: t
    for t in (
        RetryStage,
        SetConfig,
        RestoreConfig,
        PausePipeline,
        ResumePipeline,
        QuarantineBatch,
        RollbackTable,
        ScaleWorkers,
        Notify,
        ProbeSource,
        QuarantineAnnotator,
        ReleaseAnnotator,
        FallbackModel,
        Reenrich,
    )
}
TOOLS: dict[str, type[Tool]] = {**OBSERVE_TOOLS, **ACTION_TOOLS}


def tool(name: str) -> type[Tool]:
    from app.errors import NotFoundError

    try:
        return TOOLS[name]
    except KeyError:
        raise NotFoundError(f"no tool {name!r}; known: {', '.join(sorted(TOOLS))}") from None
