"""Rendering the diagnosis prompts: the templates in ``prompts/``, the
incident's signals fenced off as untrusted data, and few-shot examples from
incident memory."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

import structlog

from app.errors import DataOpsError
from app.taxonomy import RootCause
from knowledge_base import Match
from tools._signals import Signal

if TYPE_CHECKING:
    from knowledge_base import IncidentMemory
    from playbooks import PlaybookCatalog

__all__ = ["load_template", "render_system", "render_user", "recall_examples", "aware"]

_log = structlog.get_logger("dataops.agents.llm")

MAX_SIGNALS = 80
MAX_SIGNAL_CHARS = 500
MAX_QUERY_CHARS = 2000
FEW_SHOT = 3


@cache
def load_template(name: str) -> str:
    """A prompt template shipped in ``agents/llm/prompts``."""
    return resources.files("agents.llm.prompts").joinpath(name).read_text(encoding="utf-8")


def render_system(catalog: PlaybookCatalog, *, max_tool_calls: int) -> str:
    lines = []
    for pid in catalog.ids:
        pb = catalog.get(pid)
        causes = ", ".join(str(rc) for rc in pb.root_causes) or "none"
        lines.append(f"- {pb.id}: {_one_line(pb.description, 300)} (treats: {causes}; risk: {pb.risk})")
    return load_template("diagnose_system.md").format(
        max_tool_calls=max_tool_calls,
        root_causes=", ".join(rc.value for rc in RootCause),
        playbooks="\n".join(lines) or "(the catalogue is empty)",
    )


def render_user(
    *,
    incident_id: str,
    pipeline: str,
    dataset: str | None,
    opened_at: datetime,
    signals: Sequence[Signal],
    examples: Sequence[Match],
    max_tool_calls: int,
) -> str:
    signal_block = _signal_lines(signals)
    example_block = _example_lines(examples)
    signals_fence = _fence("SIGNALS", signal_block)
    examples_fence = _fence("PAST-INCIDENTS", example_block)
    return load_template("diagnose_user.md").format(
        incident_id=_one_line(incident_id, 120),
        pipeline=_one_line(pipeline, 60),
        dataset=_one_line(dataset or "default", 120),
        opened_at=aware(opened_at).isoformat(),
        signals_fence=signals_fence,
        signals=_defuse(signal_block, signals_fence) or "(no signals)",
        examples_fence=examples_fence,
        examples=_defuse(example_block, examples_fence) or "(no similar past incidents)",
        max_tool_calls=max_tool_calls,
    )


def recall_examples(
    memory: IncidentMemory | None, signals: Sequence[Signal], opened_at: datetime, *, k: int = FEW_SHOT
) -> list[Match]:
    """The ``k`` past incidents most similar to these signals, opened strictly
    before ``opened_at`` (a replay never sees its own future). Memory that
    fails costs the examples, not the diagnosis."""
    if memory is None or not signals:
        return []
    ordered = [s for s in signals if s.failing] + [s for s in signals if not s.failing]
    query = "\n".join(s.text() for s in ordered)[:MAX_QUERY_CHARS]
    if not query.strip():
        return []
    try:
        return memory.similar(query, k=k, before=aware(opened_at))
    except DataOpsError as exc:
        _log.warning("llm.memory_unavailable", error=str(exc))
        return []


def aware(moment: datetime) -> datetime:
    """``moment`` with a time zone; a naive one is taken as UTC."""
    return moment if moment.tzinfo is not None and moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def _signal_lines(signals: Sequence[Signal]) -> str:
    chosen = list(signals)
    if len(chosen) > MAX_SIGNALS:
        # Keep every failing signal we can, then the latest of the rest, in their order.
        failing = [i for i, s in enumerate(chosen) if s.failing][:MAX_SIGNALS]
        room = MAX_SIGNALS - len(failing)
        rest = [i for i, s in enumerate(chosen) if not s.failing]
        rest = rest[len(rest) - room :] if room > 0 else []
        chosen = [chosen[i] for i in sorted(failing + rest)]
    return "\n".join(f"t={s.t:g} {_one_line(s.text(), MAX_SIGNAL_CHARS)}" for s in chosen)


def _example_lines(examples: Sequence[Match]) -> str:
    blocks = []
    for match in examples:
        inc = match.incident
        fix = inc.playbook or "no playbook"
        if inc.resolution:
            fix += f" ({_one_line(inc.resolution, 200)})"
        blocks.append(
            "\n".join(
                [
                    f"Past incident {inc.id} on {inc.pipeline.value}, opened {inc.opened_at.date().isoformat()}: "
                    f"{_one_line(inc.title, 200)}",
                    f"  symptoms: {_one_line(inc.symptoms, 400)}",
                    f"  root cause: {inc.root_cause.value}",
                    f"  fix: {fix}",
                    f"  outcome: {inc.outcome.value}",
                ]
            )
        )
    return "\n\n".join(blocks)


def _fence(label: str, body: str) -> str:
    # Derived from the body it encloses, so no text inside can know it in advance and close it early.
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]
    return f"<<<{label}-{digest}>>>"


def _defuse(body: str, fence: str) -> str:
    return body.replace(fence, "[fence removed]")


def _one_line(text: str, limit: int) -> str:
    flat = " ⏎ ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
