"""The playbook catalogue: every playbook validated against the action tools,
their argument models, config bounds and the guardrail policy, plus the
policy that maps each root cause to its default playbook and decision."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from app.errors import NotFoundError, PlaybookError
from app.taxonomy import RootCause
from guardrails import GuardrailPolicy, load_policy
from playbooks._loader import check_args, check_catalogue, check_playbook, read_playbook, read_policy
from playbooks._models import Playbook, PolicyEntry, Signature, Step
from playbooks._template import render

__all__ = ["PlaybookCatalog", "default_library_dir", "default_policy_file"]


def default_library_dir() -> Path:
    """The playbooks shipped with the package."""
    return Path(str(resources.files("playbooks").joinpath("library")))


def default_policy_file() -> Path:
    """The root cause -> playbook -> decision policy shipped with the package."""
    return Path(str(resources.files("playbooks").joinpath("policy.yaml")))


class PlaybookCatalog:
    """Read-only after :meth:`load`. Playbooks are kept in id order."""

    def __init__(
        self,
        playbooks: Mapping[str, Playbook],
        policy: Mapping[RootCause, PolicyEntry],
        sources: Mapping[str, Path] | None = None,
    ) -> None:
        self._playbooks = {pid: playbooks[pid] for pid in sorted(playbooks)}
        self._policy = dict(policy)
        self._sources = dict(sources or {})

    @classmethod
    def load(
        cls,
        directory: Path | None = None,
        policy_path: Path | None = None,
        *,
        guardrails_policy: GuardrailPolicy | None = None,
        config_models: Mapping[str, type[BaseModel]] | None = None,
    ) -> PlaybookCatalog:
        """Read and validate every ``*.yaml``/``*.yml`` playbook in ``directory``
        and the policy. Raises :class:`PlaybookError`, one line naming the
        file, the playbook and the field, on the first problem found.

        Pipelines without an entry in ``config_models`` are checked against the
        tunables every pipeline shares (:class:`pipelines.runtime.PipelineConfig`).
        """
        folder = Path(directory) if directory is not None else default_library_dir()
        policy_file = Path(policy_path) if policy_path is not None else default_policy_file()
        gpolicy = guardrails_policy if guardrails_policy is not None else load_policy()
        if config_models is None:
            config_models = _config_models()
        if not folder.is_dir():
            raise PlaybookError(f"{folder}: playbook ?: field (folder): not a directory of playbooks")
        playbooks: dict[str, Playbook] = {}
        sources: dict[str, Path] = {}
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))
        for file in files:
            pb = read_playbook(file)
            if pb.id in playbooks:
                raise PlaybookError(
                    f"{file}: playbook {pb.id!r}: field id: duplicate id, already defined in {sources[pb.id]}"
                )
            check_playbook(pb, file, gpolicy, config_models)
            playbooks[pb.id] = pb
            sources[pb.id] = file
        policy = read_policy(policy_file)
        check_catalogue(playbooks, sources, policy, policy_file, folder)
        return cls(playbooks, policy, sources)

    # -- lookups -----------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return list(self._playbooks)

    def get(self, id: str) -> Playbook:
        try:
            return self._playbooks[id]
        except KeyError:
            known = ", ".join(self._playbooks) or "none"
            raise NotFoundError(f"no playbook {id!r}; known: {known}") from None

    def all(self) -> list[Playbook]:
        return list(self._playbooks.values())

    def source(self, id: str) -> Path | None:
        """The file a playbook was read from (None when built in memory)."""
        return self._sources.get(id)

    def policy(self, rc: RootCause | str, pipeline: str | None = None) -> PolicyEntry:
        """The policy's treatment of ``rc``; on ``pipeline`` when given (its
        own override, if the policy has one)."""
        cause = RootCause(rc)
        entry = self._policy.get(cause)
        if entry is None:
            raise NotFoundError(f"the playbook policy has no entry for root cause {cause.value!r}")
        return entry.for_pipeline(pipeline)

    def for_root_cause(self, rc: RootCause | str, pipeline: str | None = None) -> list[Playbook]:
        """Playbooks that treat ``rc`` (on ``pipeline`` when given): the
        policy's default (for that pipeline) first, then the others in id order."""
        cause = RootCause(rc)
        entry = self._policy.get(cause)
        default = entry.for_pipeline(pipeline).playbook if entry is not None else None
        treating = [
            pb
            for pb in self._playbooks.values()
            if cause in pb.root_causes and (pipeline is None or pipeline in pb.pipelines)
        ]
        return sorted(treating, key=lambda pb: (pb.id != default, pb.id))

    def signatures(self, pipeline: str | None = None) -> list[tuple[Playbook, Signature]]:
        """Every signature with the playbook it belongs to (playbooks that
        run on ``pipeline`` when given), in catalogue order."""
        return [
            (pb, sig)
            for pb in self._playbooks.values()
            if pipeline is None or pipeline in pb.pipelines
            for sig in pb.signatures
        ]

    def changes_nothing(self, playbook: Playbook | str) -> bool:
        """True when none of the playbook's steps changes a pipeline (it only
        notifies or probes): choosing it is handing the incident to people."""
        from tools import ACTION_TOOLS

        pb = self.get(playbook) if isinstance(playbook, str) else playbook
        return not any(ACTION_TOOLS[s.tool].mutating for s in pb.steps)

    # -- rendering ---------------------------------------------------------
    def render_steps(self, playbook: Playbook | str, context: Mapping[str, Any]) -> list[Step]:
        """The playbook's steps with their arguments rendered against
        ``context`` (``config``, ``pipeline``, ``dataset``, ``incident``,
        ``attempt``) and checked against each tool's argument model."""
        pb = self.get(playbook) if isinstance(playbook, str) else playbook
        return _render(pb, pb.steps, "steps", context)

    def render_rollback(self, playbook: Playbook | str, context: Mapping[str, Any]) -> list[Step] | None:
        """The explicit rollback steps rendered, or None when the playbook
        relies on the inverses its tools recorded."""
        pb = self.get(playbook) if isinstance(playbook, str) else playbook
        return None if pb.rollback is None else _render(pb, pb.rollback, "rollback", context)


def _config_models() -> dict[str, type[BaseModel]]:
    """Each pipeline's config model, for checking step arguments and bounds."""
    from pipelines.annotation import AnnotationConfig
    from pipelines.enrichment import EnrichmentConfig
    from pipelines.ingestion import IngestionConfig

    return {"ingestion": IngestionConfig, "annotation": AnnotationConfig, "enrichment": EnrichmentConfig}


def _render(pb: Playbook, steps: list[Step], where: str, context: Mapping[str, Any]) -> list[Step]:
    out: list[Step] = []
    for i, step in enumerate(steps):
        try:
            args = render(step.args, context)
        except PlaybookError as exc:
            raise PlaybookError(f"playbook {pb.id!r}: field {where}[{i}].args: {exc}") from None
        if not isinstance(args, dict):
            raise PlaybookError(f"playbook {pb.id!r}: field {where}[{i}].args: must render to a mapping")
        try:
            check_args(step, args)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise PlaybookError(
                f"playbook {pb.id!r}: field {where}[{i}].args.{loc}: {err['msg']} (got {err.get('input')!r})"
            ) from None
        out.append(step.model_copy(update={"args": args}))
    return out
