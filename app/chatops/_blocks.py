"""Block Kit for every reply: mrkdwn sections, with a plain-text fallback
(what notifications and screen readers show)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "APPROVE_ACTION",
    "REJECT_ACTION",
    "Reply",
    "esc",
    "section",
    "context",
    "header",
    "incident_blocks",
    "incident_line",
]

APPROVE_ACTION = "dataops_approve"
REJECT_ACTION = "dataops_reject"

_SECTION_MAX = 3000  # Slack's limit on a section's text
_HEADER_MAX = 150
_MAX_BLOCKS = 50
WAITING = ("pending_approval", "escalated")
_TITLES = {
    "open": "in progress",
    "pending_approval": "needs approval",
    "escalated": "escalated to a human",
    "resolved": "resolved",
    "rejected": "rejected",
    "failed": "failed",
}

_STATUS_ICON = {
    "open": ":large_yellow_circle:",
    "pending_approval": ":hourglass_flowing_sand:",
    "escalated": ":rotating_light:",
    "resolved": ":white_check_mark:",
    "rejected": ":no_entry_sign:",
    "failed": ":x:",
}


@dataclass
class Reply:
    """A message: fallback ``text`` plus ``blocks``; ephemeral unless it
    changed something the channel should see."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    response_type: Literal["ephemeral", "in_channel"] = "ephemeral"

    def message(self) -> dict[str, Any]:
        return {"text": _clip(self.text, 3900), "blocks": self.blocks[:_MAX_BLOCKS], "response_type": self.response_type}


def esc(text: object) -> str:
    """Text made safe for mrkdwn: Slack reads ``<``, ``>`` and ``&`` as markup."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, _SECTION_MAX)}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text, _SECTION_MAX)}]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, _HEADER_MAX), "emoji": True}}


def bullets(lines: Sequence[str], *, limit: int = 10, empty: str = "_none_") -> str:
    if not lines:
        return empty
    shown = [f"• {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"_…and {len(lines) - limit} more_")
    return "\n".join(shown)


def icon(status: str | None) -> str:
    return _STATUS_ICON.get(status or "", ":grey_question:")


def incident_line(inc: Mapping[str, Any]) -> str:
    """One incident on one mrkdwn line."""
    where = esc(inc.get("pipeline") or "?")
    if inc.get("dataset"):
        where += f"/{esc(inc['dataset'])}"
    cause = inc.get("root_cause") or "undiagnosed"
    conf = inc.get("confidence")
    cause_text = f"{esc(cause)} ({conf:.2f})" if isinstance(conf, int | float) else esc(cause)
    return f"{icon(inc.get('status'))} `{esc(inc.get('id'))}` {where} · *{esc(inc.get('status'))}* · {cause_text}"


def incident_text(inc: Mapping[str, Any]) -> str:
    """The same line as plain text, for fallbacks."""
    where = f"{inc.get('pipeline') or '?'}" + (f"/{inc['dataset']}" if inc.get("dataset") else "")
    return f"{inc.get('id')} {where} {inc.get('status')} {inc.get('root_cause') or 'undiagnosed'}"


def _action_line(action: Mapping[str, Any]) -> str:
    args = action.get("args")
    shown = ", ".join(f"{k}={v}" for k, v in args.items()) if isinstance(args, Mapping) and args else ""
    line = f"`{esc(action.get('tool'))}`({esc(shown)}) → *{esc(action.get('status'))}*"
    if action.get("rollback"):
        line += " (undo)"
    if action.get("error"):
        line += f": {esc(action['error'])}"
    return line


def incident_blocks(
    inc: Mapping[str, Any],
    *,
    buttons: bool = False,
    audit: bool = False,
    note: str | None = None,
) -> list[dict[str, Any]]:
    """An incident card: what happened, why, what was done; Approve / Reject
    buttons while it waits for a human (when ``buttons``)."""
    status = str(inc.get("status") or "")
    title = _TITLES.get(status, status or "incident")
    blocks = [header(f"{inc.get('id')}: {title}")]
    facts = [
        f"*Pipeline* {esc(inc.get('pipeline') or '?')}" + (f"/{esc(inc['dataset'])}" if inc.get("dataset") else ""),
        f"*Status* {icon(status)} {esc(status)}",
    ]
    conf = inc.get("confidence")
    if inc.get("root_cause"):
        facts.append(
            f"*Root cause* {esc(inc['root_cause'])}" + (f" (confidence {conf:.2f})" if isinstance(conf, int | float) else "")
        )
    if inc.get("decision"):
        facts.append(f"*Decision* {esc(inc['decision'])}")
    if inc.get("playbook"):
        facts.append(f"*Playbook* {esc(inc['playbook'])}")
    blocks.append(section("\n".join(facts)))
    if inc.get("summary"):
        blocks.append(section(f"*Diagnosis*\n{esc(inc['summary'])}"))
    evidence = [esc(e) for e in inc.get("evidence") or []]
    if evidence:
        blocks.append(section("*Evidence*\n" + bullets(evidence, limit=6)))
    actions = [_action_line(a) for a in inc.get("actions") or [] if isinstance(a, Mapping)]
    if actions or "actions" in inc:
        blocks.append(section("*Actions*\n" + bullets(actions, limit=10)))
    notes = [esc(n) for n in inc.get("notes") or []]
    if notes and audit:
        blocks.append(section("*Notes*\n" + bullets(notes, limit=6)))
    if audit:
        trail = [
            f"#{e.get('seq')} {esc(str(e.get('ts', ''))[:19])} {esc(e.get('actor'))} `{esc(e.get('action'))}` "
            f"{esc(e.get('verdict'))}" + (f": {esc(e.get('reason'))}" if e.get("reason") else "")
            for e in inc.get("audit") or []
        ]
        blocks.append(section("*Audit trail*\n" + bullets(trail[-12:], limit=12)))
    if note:
        blocks.append(context(note))
    if buttons and status in WAITING:
        blocks.append(approval_buttons(str(inc.get("id"))))
    return blocks


def approval_buttons(incident_id: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": "dataops_approval",
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": incident_id,
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": incident_id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Reject the fix?"},
                    "text": {"type": "mrkdwn", "text": f"Nothing more runs for `{esc(incident_id)}`."},
                    "confirm": {"type": "plain_text", "text": "Reject"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                },
            },
        ],
    }
