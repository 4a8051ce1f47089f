"""Action and observe tools for the annotation and enrichment pipelines:
annotators, model versions and re-enrichment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from guardrails import Risk
from tools._base import ActionTool, Args, InverseStep, ObserveTool, ScopeArgs, ToolResult

__all__ = [
    "MODEL_VERSION_KEYS",
    "AnnotatorArgs",
    "FallbackModel",
    "FallbackModelArgs",
    "QuarantineAnnotator",
    "QuarantineAnnotatorArgs",
    "Reenrich",
    "ReenrichArgs",
    "ReenrichScope",
    "ReleaseAnnotator",
]

_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"

# The enrichment config's tunable holding each kind of model's registry version.
MODEL_VERSION_KEYS: dict[str, str] = {"embedding": "embedding_model_version", "labeler": "label_model_version"}


class ReenrichArgs(ScopeArgs):
    snapshot_id: int | None = Field(
        default=None, ge=0, description="The raw table snapshot to enrich again; default the current one."
    )
    version: str | None = Field(
        default=None, pattern=_VERSION, description="Name of the new enrichment version; default the next one."
    )


class ReenrichScope(ObserveTool):
    name = "reenrich_scope"
    description = "How many samples a re-enrichment would process, from which raw snapshot, into which version."
    args_model = ReenrichArgs


_ANNOTATOR = r"^[^\x00-\x1f]{1,200}$"


class AnnotatorArgs(ScopeArgs):
    annotator: str = Field(pattern=_ANNOTATOR, description="The annotator's name in the annotation queue.")


class QuarantineAnnotatorArgs(AnnotatorArgs):
    reason: str = Field(default="far below the other annotators' agreement", max_length=500)


class QuarantineAnnotator(ActionTool):
    name = "quarantine_annotator"
    description = (
        "Stop taking an annotator's answers: their answers are set aside and the tasks they touched go back to "
        "the queue for others."
    )
    args_model = QuarantineAnnotatorArgs
    risk = Risk.MEDIUM
    idempotent = True

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        assert isinstance(args, QuarantineAnnotatorArgs)
        return InverseStep(
            tool="release_annotator",
            args={"pipeline": args.pipeline, "dataset": args.dataset, "annotator": args.annotator},
        )


class ReleaseAnnotator(ActionTool):
    name = "release_annotator"
    description = "Take an annotator's answers again (their set-aside answers stay set aside)."
    args_model = AnnotatorArgs
    risk = Risk.MEDIUM
    idempotent = True

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        assert isinstance(args, AnnotatorArgs)
        return InverseStep(
            tool="quarantine_annotator",
            args={**args.model_dump(), "reason": "quarantine restored by a rollback"},
        )


class FallbackModelArgs(ScopeArgs):
    kind: Literal["embedding", "labeler"] = Field(description="Which model falls back to its previous version.")


class FallbackModel(ActionTool):
    name = "fallback_model"
    description = "Switch an embedding model or auto-labeler to the model registry's previous version."
    args_model = FallbackModelArgs
    risk = Risk.MEDIUM
    idempotent = True

    def inverse(self, args: Args, result: ToolResult, old_value: Any) -> InverseStep | None:
        assert isinstance(args, FallbackModelArgs)
        previous = (result.data or {}).get("previous_version")
        if previous is None:
            return None
        return InverseStep(
            tool="set_config",
            args={
                "pipeline": args.pipeline,
                "dataset": args.dataset,
                "key": MODEL_VERSION_KEYS[args.kind],
                "value": previous,
            },
        )


class Reenrich(ActionTool):
    name = "reenrich"
    description = (
        "Enrich a raw snapshot again as a new enrichment version (the old version stays readable). Needs a human's "
        "approval above the config's reenrich_approval_above samples."
    )
    args_model = ReenrichArgs
    risk = Risk.MEDIUM
    idempotent = True

    def approval_needed(self, args: Args, observe: Callable[[str, dict[str, Any]], ToolResult]) -> str | None:
        assert isinstance(args, ReenrichArgs)
        scope = {"pipeline": args.pipeline, "dataset": args.dataset}
        cfg = observe("get_config", scope)
        limit = ((cfg.data or {}).get("values") or {}).get("reenrich_approval_above") if cfg.is_ok else None
        if not isinstance(limit, int | float):
            return f"the {args.pipeline} config sets no reenrich_approval_above"
        size = observe("reenrich_scope", args.model_dump())
        samples = (size.data or {}).get("samples") if size.is_ok else None
        if not isinstance(samples, int | float):
            return f"cannot tell how many samples reenrich would touch ({size.error or 'no count'})"
        if samples > limit:
            return f"reenrich would touch {int(samples):,} samples, more than reenrich_approval_above={int(limit):,}"
        return None
