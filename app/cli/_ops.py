"""Operations commands: incidents, approvals, the kill switch, the audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli._common import console, open_runtime, print_json, table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

incidents_app = typer.Typer(help="Incidents the agents opened.", no_args_is_help=True)
autofix_app = typer.Typer(help="The auto-fix kill switch.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only, hash-chained audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(incidents_app, name="incidents")
    app.add_typer(autofix_app, name="autofix")
    app.add_typer(audit_app, name="audit")


def _row_dict(r) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return r.model_dump(mode="json")


@incidents_app.command("list")
def incidents_list(
    status: Annotated[str | None, typer.Option(help="open | resolved | failed | escalated | pending_approval | …")] = None,
    limit: int = 50,
    json_out: JsonOpt = False,
) -> None:
    """Incidents, newest first."""
    from agents import IncidentStore

    rt = open_runtime()
    rows = IncidentStore(rt.engine).recent(status=status, limit=limit)
    if json_out:
        print_json([_row_dict(r) for r in rows])
        return
    console.print(
        table(
            "Incidents",
            ["id", "pipeline", "status", "root cause", "conf", "decision", "playbook", "s to resolve"],
            [
                (r.id, r.pipeline, r.status, r.root_cause, f"{r.confidence:.2f}" if r.confidence is not None else "",
                 r.decision, r.playbook, r.seconds_to_resolve)
                for r in rows
            ],
        )
    )


@incidents_app.command("show")
def incidents_show(incident_id: str, json_out: JsonOpt = False) -> None:
    """One incident: diagnosis, evidence, actions and its audit trail."""
    from agents import IncidentStore
    from guardrails import AuditLog

    rt = open_runtime()
    row = IncidentStore(rt.engine).get(incident_id)
    audit = [e.model_dump(mode="json") for e in AuditLog(rt.engine).entries(incident_id, limit=500)]
    if json_out:
        print_json({**_row_dict(row), "audit": audit})
        return
    diag = row.diagnosis or {}
    console.print(f"[bold]{row.id}[/bold]  {row.pipeline}/{row.dataset}  status [bold]{row.status}[/bold]")
    console.print(f"root cause {row.root_cause} (confidence {row.confidence}), decision {row.decision}, playbook {row.playbook}")
    console.print(f"summary: {row.summary}")
    console.print(table("Evidence", ["signal"], [(e,) for e in diag.get("evidence", [])]))
    console.print(table("Actions", ["tool", "status", "args", "error"], [(a["tool"], a["status"], a["args"], a.get("error")) for a in row.actions]))
    console.print(table("Audit", ["seq", "actor", "action", "verdict", "reason"], [(a["seq"], a["actor"], a["action"], a["verdict"], a["reason"]) for a in audit]))


def _answer(incident_id: str, approved: bool, reason: str, by: str) -> None:
    from agents import supervisor

    rt = open_runtime()
    with supervisor(rt) as sup:
        row = sup.answer(incident_id, approved=approved, by=by, reason=reason)
    console.print(f"{row.id}: {row.status}")


@incidents_app.command("approve")
def incidents_approve(
    incident_id: str,
    reason: str = "",
    by: Annotated[str, typer.Option(help="Who approves (audited).")] = "cli",
) -> None:
    """Approve an incident waiting for a human; its graph resumes and the fix runs."""
    _answer(incident_id, True, reason, by)


@incidents_app.command("reject")
def incidents_reject(
    incident_id: str,
    reason: str = "",
    by: Annotated[str, typer.Option(help="Who rejects (audited).")] = "cli",
) -> None:
    """Reject an incident waiting for a human; nothing more runs."""
    _answer(incident_id, False, reason, by)


def _guardrails():  # type: ignore[no-untyped-def]
    from agents import config_models
    from guardrails import Guardrails, load_policy
    from pipelines.runtime import bounds_of

    rt = open_runtime()
    return Guardrails(rt.engine, load_policy(), {p: bounds_of(m) for p, m in config_models().items()})


@autofix_app.command("pause")
def autofix_pause(
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline (default: all).")] = None,
    reason: str = "paused from the CLI",
    by: str = "cli",
) -> None:
    """Stop every automatic action (for one pipeline or all)."""
    _guardrails().pause(pipeline or "*", by=by, reason=reason)
    console.print(f"auto-fix paused for {pipeline or 'all pipelines'}")


@autofix_app.command("resume")
def autofix_resume(
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline (default: all).")] = None,
    by: str = "cli",
) -> None:
    """Let the agents act again."""
    _guardrails().resume(pipeline or "*", by=by)
    console.print(f"auto-fix resumed for {pipeline or 'all pipelines'}")


@autofix_app.command("status")
def autofix_status(json_out: JsonOpt = False) -> None:
    """Which kill switches are set."""
    switches = [s.model_dump(mode="json") for s in _guardrails().kill_switches()]
    if json_out:
        print_json(switches)
        return
    console.print(table("Kill switches", ["scope", "paused", "by", "reason"], [(s["scope"], s["paused"], s["by"], s["reason"]) for s in switches]))


@audit_app.command("verify")
def audit_verify(json_out: JsonOpt = False) -> None:
    """Check the audit log's hash chain; exit 1 on tampering."""
    from guardrails import AuditLog

    rt = open_runtime()
    result = AuditLog(rt.engine).verify()
    if json_out:
        print_json(result.model_dump(mode="json") if hasattr(result, "model_dump") else result.__dict__)
    elif result.ok:
        console.print(f"audit log intact: {result.checked} entries verified")
    else:
        console.print(f"[red]audit log TAMPERED[/red] at seq {result.first_bad_seq}: {result.reason}")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("list")
def audit_list(incident: str | None = None, limit: int = 50, json_out: JsonOpt = False) -> None:
    """Recent audit entries."""
    from guardrails import AuditLog

    rt = open_runtime()
    rows = [e.model_dump(mode="json") for e in AuditLog(rt.engine).entries(incident, limit=limit)]
    if json_out:
        print_json(rows)
        return
    console.print(
        table("Audit log", ["seq", "ts", "actor", "incident", "action", "verdict", "reason"],
              [(r["seq"], r["ts"], r["actor"], r["incident_id"], r["action"], r["verdict"], r["reason"]) for r in rows])
    )
