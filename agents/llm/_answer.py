"""The model's final answer: the ``submit_diagnosis`` function it must call,
the pydantic model its arguments are parsed into, and the checks that turn
it into a :class:`~agents._diagnosis.Diagnosis` nothing downstream has to
trust blindly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from app.taxonomy import RootCause
from tools._signals import Signal

if TYPE_CHECKING:
    from playbooks import PlaybookCatalog

__all__ = ["SUBMIT_TOOL", "SubmittedDiagnosis", "Checked", "submit_spec", "parse_submission", "check_answer"]

SUBMIT_TOOL = "submit_diagnosis"
_MAX_EVIDENCE = 8
_FALLBACK_EVIDENCE = 3
_MAX_SUMMARY = 1200
_MIN_OVERLAP = 0.6
_STOPWORDS = frozenset("the and for with from that this was were are has have not but into after before".split())


class SubmittedDiagnosis(BaseModel):
    """``submit_diagnosis``'s arguments as the model sent them. Root cause and
    confidence must be right; playbooks are only strings here because an
    unknown one is dropped later, not a reason to ask again."""

    model_config = ConfigDict(extra="ignore")

    root_cause: RootCause
    confidence: float
    evidence: list[str] = []
    summary: str = ""
    playbooks: list[str] = []

    @field_validator("root_cause", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("confidence")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("confidence must be a finite number")
        return value

    @field_validator("evidence", "playbooks", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("summary", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else value


def submit_spec(playbook_ids: Sequence[str]) -> dict[str, Any]:
    """The function the model must call to answer, as an OpenAI function spec."""
    playbook_item: dict[str, Any] = {"type": "string"}
    if playbook_ids:
        playbook_item["enum"] = list(playbook_ids)
    return {
        "type": "function",
        "function": {
            "name": SUBMIT_TOOL,
            "description": "Submit the final diagnosis. Call it exactly once, when you are done observing.",
            "parameters": {
                "type": "object",
                "properties": {
                    "root_cause": {
                        "type": "string",
                        "enum": [rc.value for rc in RootCause],
                        "description": "The one root cause from the taxonomy that best explains the signals.",
                    },
                    "confidence": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "description": "How sure you are, from 0 to 1.",
                    },
                    "evidence": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Signal lines that support the root cause, copied verbatim from the signals.",
                    },
                    "summary": {"type": "string", "description": "Two or three sentences for the on-call engineer."},
                    "playbooks": {
                        "type": "array",
                        "items": playbook_item,
                        "description": "Catalogued playbooks that treat this root cause, best first; may be empty.",
                    },
                },
                "required": ["root_cause", "confidence", "evidence", "summary", "playbooks"],
            },
        },
    }


def parse_submission(arguments: dict[str, Any]) -> SubmittedDiagnosis | str:
    """The parsed answer, or one line saying what is wrong with it."""
    try:
        return SubmittedDiagnosis.model_validate(arguments)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err["loc"]) or "arguments"
            problems.append(f"{loc}: {err['msg']}")
        return "; ".join(problems)


@dataclass
class Checked:
    """A validated answer, and what validation had to change."""

    root_cause: RootCause
    confidence: float
    evidence: list[str]
    summary: str
    candidates: list[str]
    notes: list[str] = field(default_factory=list)


def check_answer(
    answer: SubmittedDiagnosis,
    *,
    signals: Sequence[Signal],
    pipeline: str,
    catalog: PlaybookCatalog,
) -> Checked:
    """Validate the model's answer against the signals and the catalogue.

    - confidence is clipped to [0, 1];
    - evidence keeps only lines found in (or overlapping) a signal, replaced
      by that signal's text; with none left, the first failing signals;
    - candidates keep only catalogued playbooks that treat the root cause on
      this pipeline; with none left, the catalogue's own for that cause.
    """
    notes: list[str] = []
    confidence = min(1.0, max(0.0, answer.confidence))
    if confidence != answer.confidence:
        notes.append(f"confidence {answer.confidence:g} clipped to {confidence:g}")

    evidence = quoted_evidence(answer.evidence, signals)
    dropped = sum(1 for line in answer.evidence if line.strip() and not quoted_evidence([line], signals))
    if dropped:
        notes.append(f"{dropped} evidence line(s) not found in the signals dropped")
    if not evidence:
        evidence = fallback_evidence(signals)
        if evidence:
            notes.append("evidence taken from the failing signals")

    candidates, pb_notes = _check_playbooks(answer.playbooks, answer.root_cause, pipeline, catalog)
    notes += pb_notes

    summary = " ".join(answer.summary.split())[:_MAX_SUMMARY]
    return Checked(answer.root_cause, confidence, evidence[:_MAX_EVIDENCE], summary, candidates, notes)


def _check_playbooks(
    proposed: Iterable[str], root_cause: RootCause, pipeline: str, catalog: PlaybookCatalog
) -> tuple[list[str], list[str]]:
    known = set(catalog.ids)
    treating = [pb.id for pb in catalog.for_root_cause(root_cause, pipeline=pipeline)]
    kept: list[str] = []
    notes: list[str] = []
    for raw in proposed:
        pid = raw.strip()
        if not pid or pid in kept:
            continue
        if pid not in known:
            notes.append(f"playbook {_show(pid)} dropped: not in the catalogue")
        elif pid not in treating:
            treats = root_cause in catalog.get(pid).root_causes
            why = f"not for the {pipeline} pipeline" if treats else f"does not treat {root_cause.value}"
            notes.append(f"playbook {pid} dropped: {why}")
        else:
            kept.append(pid)
    if not kept and treating:
        kept = treating
        notes.append(f"candidates are the catalogue's playbooks for {root_cause.value}")
    return kept, notes


def quoted_evidence(lines: Iterable[str], signals: Sequence[Signal]) -> list[str]:
    """Each evidence line replaced by the signal text it quotes; lines that
    quote no signal are dropped."""
    texts = [s.text() for s in signals]
    prepared = [(_norm(t), _tokens(t)) for t in texts]
    out: list[str] = []
    for line in lines:
        norm = _norm(line)
        if not norm:
            continue
        toks = _tokens(line)
        best, best_score = None, 0.0
        for i, (text_norm, text_toks) in enumerate(prepared):
            if norm in text_norm or text_norm in norm:
                score = 2.0
            elif toks:
                shared = len(toks & text_toks)
                score = shared / len(toks) if shared >= 2 else 0.0
            else:
                score = 0.0
            if score > best_score:
                best, best_score = i, score
        if best is not None and best_score >= _MIN_OVERLAP and texts[best] not in out:
            out.append(texts[best])
    return out


def fallback_evidence(signals: Sequence[Signal]) -> list[str]:
    """The first failing signals' texts (the first signals when none fails)."""
    chosen = [s for s in signals if s.failing] or list(signals)
    out: list[str] = []
    for s in chosen:
        text = s.text()
        if text not in out:
            out.append(text)
        if len(out) == _FALLBACK_EVIDENCE:
            break
    return out


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _tokens(text: str) -> set[str]:
    return {t for t in re.findall(r"[a-z0-9_]+", text.lower()) if len(t) >= 3 and t not in _STOPWORDS}


def _show(text: str) -> str:
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(clean if len(clean) <= 60 else clean[:59] + "…")
