"""The offline diagnosis engine: the playbooks' signature rules, plus a vote
of the most similar past incidents in memory weighted by similarity and
outcome. Needs no LLM and stands on its own."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from agents._diagnosis import Diagnosis, DiagnosisRequest
from app.errors import PlaybookError
from app.taxonomy import Outcome, RootCause

if TYPE_CHECKING:
    from knowledge_base import IncidentMemory
    from playbooks import Playbook, PlaybookCatalog, Signature
    from tools import Signal, ToolBox

__all__ = ["OfflineDiagnosisEngine", "incident_query"]

# How much a past incident's outcome says about its root cause: a resolved
# one confirms it, a failed fix says less (the cause may have been wrong).
_OUTCOME_WEIGHT = {
    Outcome.RESOLVED: 1.0,
    Outcome.ESCALATED: 0.8,
    Outcome.NO_ACTION: 0.8,
    Outcome.ROLLED_BACK: 0.5,
    Outcome.FAILED: 0.4,
}


def incident_query(signals: list[Signal], limit: int = 12) -> str:
    """The text that describes an incident for memory recall: its symptoms
    (routine events like run_started would make every incident look alike)."""
    from agents._monitor import symptoms
    from agents._state import AgentSettings

    ordered = symptoms(signals, AgentSettings()) or [s for s in signals if s.failing] or signals
    seen: list[str] = []
    for s in ordered:
        line = s.text()
        if line not in seen:
            seen.append(line)
        if len(seen) >= limit:
            break
    return "\n".join(seen)


class OfflineDiagnosisEngine:
    name = "offline"

    def __init__(self, *, rule_weight: float = 0.75, memory_k: int = 5, min_similarity: float = 0.35) -> None:
        self.rule_weight = rule_weight
        self.memory_k = memory_k
        self.min_similarity = min_similarity

    def diagnose(
        self,
        request: DiagnosisRequest,
        *,
        tools: ToolBox,
        playbooks: PlaybookCatalog,
        memory: IncidentMemory | None,
    ) -> Diagnosis:
        signals = request.signals
        weights: dict[RootCause, list[float]] = defaultdict(list)
        evidence: dict[RootCause, list[str]] = defaultdict(list)
        # Per root cause, the matched signatures with their playbooks: the
        # strongest one names the treatment its playbook stands for.
        found: dict[RootCause, list[tuple[Playbook, Signature]]] = defaultdict(list)
        for playbook, sig in playbooks.signatures(request.pipeline):
            matched = sig.match(signals)
            if matched is None:
                continue
            rc = RootCause(sig.root_cause)
            weights[rc].append(sig.weight)
            found[rc].append((playbook, sig))
            for s in matched:
                line = s.text()
                if line not in evidence[rc]:
                    evidence[rc].append(line)

        # The strongest signature sets the score; a second independent one
        # that agrees closes half of the remaining gap.
        rules: dict[RootCause, float] = {}
        for rc, ws in weights.items():
            ws = sorted(ws, reverse=True)
            rules[rc] = ws[0] + (1 - ws[0]) * 0.5 * (ws[1] if len(ws) > 1 else 0.0)

        votes: dict[RootCause, float] = defaultdict(float)
        recalled: list[str] = []
        if memory is not None:
            query = incident_query(signals)
            if query:
                for m in memory.similar(query, k=self.memory_k, before=request.opened_at, pipeline=request.pipeline):
                    if m.similarity < self.min_similarity:
                        continue
                    w = m.similarity * _OUTCOME_WEIGHT.get(Outcome(m.incident.outcome), 0.5)
                    votes[RootCause(m.incident.root_cause)] += w
                    recalled.append(f"{m.incident.id} ({m.incident.root_cause}, {m.incident.outcome}, sim {m.similarity:.2f})")
        total_votes = sum(votes.values())
        mem_share = {rc: v / total_votes for rc, v in votes.items()} if total_votes else {}

        scores: dict[RootCause, float] = {}
        for rc in set(rules) | set(mem_share):
            if rules and mem_share:
                scores[rc] = self.rule_weight * rules.get(rc, 0.0) + (1 - self.rule_weight) * mem_share.get(rc, 0.0)
            elif rules:
                scores[rc] = rules.get(rc, 0.0)
            else:  # memory alone is weaker evidence than a matching signature
                scores[rc] = 0.6 * mem_share[rc]
        if not scores:
            return Diagnosis(
                root_cause=RootCause.NO_FAULT,
                confidence=0.2,
                evidence=[s.text() for s in signals if s.failing][:5],
                summary="No signature matched and no similar past incident was found.",
                candidates=[],
                engine=self.name,
            )
        # Ties go to the stronger signature, then to the taxonomy's order: never to set order.
        order = list(RootCause)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], -rules.get(kv[0], 0.0), order.index(kv[0])))
        best = ranked[0][0]
        margin = ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0.0)
        # Confidence: the winning score, docked when a rival is close.
        confidence = max(0.0, min(1.0, scores[best] - max(0.0, 0.15 - margin)))
        candidates = [p.id for p in playbooks.for_root_cause(best, request.pipeline)]
        default = candidates[0] if candidates else None
        strongest = sorted(found.get(best, []), key=lambda ps: (-ps[1].weight, ps[0].id != default, ps[0].id))
        # A playbook that changes nothing recognises a cause but is no
        # treatment to prefer over the pipeline's own.
        hint = next((pb.id for pb, _ in strongest if not playbooks.changes_nothing(pb)), None)
        if hint is not None:
            candidates = [hint, *(c for c in candidates if c != hint)]
        note = _note(strongest, signals)
        summary = (
            f"{best.value}: "
            + (f"signatures matched ({rules[best]:.2f})" if best in rules else "no signature matched")
            + (f"; {note}" if note else "")
            + (f"; memory agrees ({mem_share.get(best, 0):.0%} of similar incidents)" if mem_share else "")
            + (f"; recalled {', '.join(recalled[:3])}" if recalled else "")
        )
        return Diagnosis(
            root_cause=best,
            confidence=round(confidence, 3),
            evidence=evidence.get(best) or [s.text() for s in signals if s.failing][:5],
            summary=summary,
            candidates=candidates,
            playbook=hint,
            engine=self.name,
            scores={rc.value: round(v, 3) for rc, v in ranked},
        )


def _note(strongest: list[tuple[Playbook, Signature]], signals: list[Signal]) -> str | None:
    """The note of the strongest matched signature that has one, rendered
    with the incident's metrics; None when none has one or it cannot render
    (a figure it names is missing)."""
    from playbooks import evidence_lookups, render

    for _pb, sig in strongest:
        if sig.note is None:
            continue
        try:
            text = render(sig.note, evidence_lookups(signals))
        except PlaybookError:
            continue
        return " ".join(str(text).split())
    return None
