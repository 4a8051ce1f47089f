"""The exception tree. Every error the project raises on purpose derives from
:class:`DataOpsError`; third-party errors are translated where they enter."""

from __future__ import annotations

__all__ = [
    "DataOpsError",
    "ConfigError",
    "InputError",
    "NotFoundError",
    "StorageError",
    "PipelineError",
    "StageError",
    "RecordRejected",
    "BoundsError",
    "GuardrailError",
    "PlaybookError",
    "LLMError",
]


class DataOpsError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(DataOpsError):
    """Settings, a policy file, a schema or a playbook is invalid."""


class InputError(DataOpsError):
    """Bad input from a user: a missing folder, an unreadable manifest, a malformed case."""


class NotFoundError(DataOpsError):
    """A named thing (dataset, run, incident, snapshot) does not exist."""


class StorageError(DataOpsError):
    """A store (metadata DB, object store, offline or online store) failed."""


class PipelineError(DataOpsError):
    """A pipeline run cannot go on."""


class StageError(PipelineError):
    """A stage failed on a whole batch after its retries."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"stage {stage!r} failed: {message}")
        self.stage = stage
        self.message = message


class RecordRejected(DataOpsError):
    """One record cannot be accepted; it goes to quarantine with ``reason``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class BoundsError(ConfigError):
    """A tunable was set outside its declared bounds."""


class GuardrailError(DataOpsError):
    """A guardrail refused an action."""


class PlaybookError(ConfigError):
    """A playbook does not validate against the tools and bounds."""


class LLMError(DataOpsError):
    """The configured LLM failed or answered something unusable."""
