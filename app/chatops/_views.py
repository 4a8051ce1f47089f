"""Replies to each command, built from what the ops backend returned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.chatops._blocks import (
    Reply,
    bullets,
    context,
    esc,
    header,
    incident_blocks,
    incident_line,
    incident_text,
    section,
)
from app.chatops._commands import USAGE, usage
from app.chatops._roles import Role

__all__ = [
    "status_reply",
    "incidents_reply",
    "show_reply",
    "switch_reply",
    "run_reply",
    "answer_reply",
    "help_reply",
    "refusal_reply",
    "error_reply",
    "working_reply",
    "outcome_reply",
]


def _autofix_line(autofix: Mapping[str, Any]) -> tuple[str, str]:
    if autofix.get("paused"):
        who = f" by {esc(autofix['by'])}" if autofix.get("by") else ""
        why = f" ({esc(autofix['reason'])})" if autofix.get("reason") else ""
        return f":octagonal_sign: Auto-fix is *paused for every pipeline*{who}{why}", "auto-fix paused everywhere"
    paused = [str(p) for p in autofix.get("paused_pipelines") or []]
    if paused:
        names = ", ".join(f"`{esc(p)}`" for p in paused)
        return f":large_green_circle: Auto-fix is *on*, except for {names}", f"auto-fix on except {', '.join(paused)}"
    return ":large_green_circle: Auto-fix is *on*", "auto-fix on"


def _run_text(run: Mapping[str, Any] | None) -> str:
    if not run:
        return "no run yet"
    counts = ", ".join(f"{k} {run[k]}" for k in ("read", "accepted", "duplicates", "quarantined") if k in run)
    return f"last run *{esc(run.get('status'))}*" + (f" ({counts})" if counts else "")


def _pipeline_line(p: Mapping[str, Any]) -> str:
    name = esc(p.get("pipeline") or "?") + (f"/{esc(p['dataset'])}" if p.get("dataset") else "")
    flags = []
    if p.get("paused"):
        flags.append(":double_vertical_bar: paused")
    if p.get("autofix_paused"):
        flags.append("auto-fix off")
    tail = f" · {' · '.join(flags)}" if flags else ""
    return f"`{name}` · {_run_text(p.get('last_run'))}{tail}"


def status_reply(status: Mapping[str, Any]) -> Reply:
    autofix_mrkdwn, autofix_plain = _autofix_line(status.get("autofix") or {})
    pipelines = list(status.get("pipelines") or [])
    open_incidents = list(status.get("open_incidents") or [])
    blocks = [
        header("dataops status"),
        section(autofix_mrkdwn),
        section("*Pipelines*\n" + bullets([_pipeline_line(p) for p in pipelines], empty="_no supervised pipelines_")),
        section(
            f"*Open incidents* ({len(open_incidents)})\n"
            + bullets([incident_line(i) for i in open_incidents], empty="_none_")
        ),
    ]
    text = f"dataops: {autofix_plain}; {len(pipelines)} pipeline(s); {len(open_incidents)} open incident(s)"
    return Reply(text, blocks)


def incidents_reply(rows: Sequence[Mapping[str, Any]], which: str) -> Reply:
    title = "Open incidents" if which == "open" else "Incidents"
    lines = [incident_line(r) for r in rows]
    blocks = [section(f"*{title}* ({len(rows)})\n" + bullets(lines, limit=25, empty="_none_"))]
    if rows:
        blocks.append(context("`/dataops show ID` for one of them"))
    text = f"{title}: " + ("; ".join(incident_text(r) for r in rows[:10]) if rows else "none")
    return Reply(text, blocks)


def show_reply(inc: Mapping[str, Any]) -> Reply:
    return Reply(f"Incident {incident_text(inc)}", incident_blocks(inc, buttons=True, audit=True))


def outcome_reply(inc: Mapping[str, Any], verb: str, user: str) -> Reply:
    """After an approval or a rejection: the incident as it is now."""
    note = f"{verb} by <@{esc(user)}>"
    return Reply(
        f"{inc.get('id')} {verb} by {user}: now {inc.get('status')}",
        incident_blocks(inc, note=note),
        response_type="in_channel",
    )


def switch_reply(result: Mapping[str, Any], paused: bool, user: str) -> Reply:
    scope = result.get("scope") or "*"
    where = "every pipeline" if scope == "*" else f"`{esc(scope)}`"
    if paused:
        what = f":octagonal_sign: <@{esc(user)}> paused auto-fix for {where}"
        if result.get("pipeline_paused"):
            what += "; its runs are paused too"
    else:
        what = f":arrow_forward: <@{esc(user)}> resumed {where}"
        if result.get("global_paused") and scope != "*":
            what += " — auto-fix stays off: the global kill switch is still on (`/dataops resume` needs an admin)"
    plain = what.replace(f"<@{esc(user)}>", user)
    return Reply(plain, [section(what)], response_type="in_channel")


def run_reply(summary: Mapping[str, Any], user: str) -> Reply:
    name = f"{summary.get('pipeline')}/{summary.get('dataset')}"
    counts = ", ".join(
        f"{k} {summary[k]}" for k in ("read", "accepted", "duplicates", "quarantined", "skipped") if k in summary
    )
    secs = summary.get("seconds")
    text = (
        f"Run `{esc(summary.get('run_id'))}` of `{esc(name)}` (asked by <@{esc(user)}>): *{esc(summary.get('status'))}*"
        + (f" in {secs:.1f}s" if isinstance(secs, int | float) else "")
        + (f"\n{counts}" if counts else "")
    )
    if summary.get("error"):
        text += f"\n:warning: {esc(summary['error'])}"
    return Reply(f"run {summary.get('run_id')} of {name}: {summary.get('status')}", [section(text)], "in_channel")


def answer_reply(question: str, answer: str) -> Reply:
    return Reply(answer, [context(f"*Q:* {esc(question)}"), section(esc(answer))])


def help_reply() -> Reply:
    lines = [f"`{usage(name)}` — {what}" for name, (_, what) in USAGE.items()]
    roles = (
        "Viewers may read and ask; operators may also approve, reject, pause, resume a pipeline and run one; "
        "lifting the global kill switch (`/dataops resume`) needs an admin."
    )
    text = "dataops commands: " + ", ".join(USAGE)
    return Reply(text, [section("*dataops commands*\n" + "\n".join(lines)), context(roles)])


def refusal_reply(command: str, needed: Role, role: Role, problem: str | None = None) -> Reply:
    why = f"`/dataops {command}` needs the *{needed.value}* role; you are a *{role.value}*."
    if problem:
        why += f"\n:warning: {esc(problem)}"
    else:
        why += " Ask an admin to add you to the roles file."
    return Reply(f"/dataops {command} needs the {needed.value} role; you are a {role.value}.", [section(why)])


def error_reply(message: str) -> Reply:
    return Reply(message, [section(f":warning: {esc(message)}")])


def working_reply(message: str) -> Reply:
    return Reply(message, [context(f":hourglass_flowing_sand: {esc(message)}")])
