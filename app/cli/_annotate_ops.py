"""``dataops annotate run | status | export | import | label | annotators |
review``: the annotation pipeline and the people around it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli._common import console, err_console, open_runtime, print_json, table
from app.errors import InputError
from pipelines.annotation import (
    AnnotationStatus,
    annotation_status,
    annotator_status,
    export_label_studio,
    import_label_studio,
    project_of,
    review_decide,
    review_list,
    run_annotation,
    submit_label,
    tasks_for,
)
from pipelines.runtime import RunSummary, Runtime

__all__ = ["register"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DatasetArg = Annotated[str, typer.Argument(help="The annotation dataset (its labels table has this name).")]

review_app = typer.Typer(help="Expert review of tasks people disagreed on.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("status")(status_cmd)
    app.command("export")(export_cmd)
    app.command("import")(import_cmd)
    app.command("label")(label_cmd)
    app.command("annotators")(annotators_cmd)
    app.add_typer(review_app, name="review")


def read_json_file(path: Path) -> Any:
    """A JSON file's content; one-line InputError when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _run_metrics(rt: Runtime, run_id: str) -> dict[str, float]:
    events = rt.events.list(pipeline="annotation", run_id=run_id, types=["metrics"], limit=5)
    values = events[-1].data.get("values", []) if events else []
    return {
        v["name"] + "".join(f"{{{k}={lv}}}" for k, lv in sorted((v.get("labels") or {}).items())): float(v["value"])
        for v in values
    }


def run_cmd(
    dataset: DatasetArg,
    source: Annotated[str | None, typer.Option("--from", help="Ingested dataset to label (needed the first time).")] = None,
    labels: Annotated[str | None, typer.Option(help="Comma-separated labels (needed the first time).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Auto-label new samples, queue the rest for people, close answered tasks, write labels."""
    rt = open_runtime()
    names = [x.strip() for x in labels.split(",")] if labels else None
    if json_out:
        s = run_annotation(rt, dataset, source, labels=names)
    else:
        with err_console.status(f"annotating {dataset}…"):
            s = run_annotation(rt, dataset, source, labels=names)
    figures = _run_metrics(rt, s.run_id)
    if json_out:
        print_json({"run": s.model_dump(), "metrics": figures})
    else:
        _print_run(s, figures)
    if s.status == "failed":
        raise typer.Exit(1)


def _print_run(s: RunSummary, figures: dict[str, float]) -> None:
    rows: list[tuple[str, Any]] = [
        ("run", s.run_id),
        ("status", s.status),
        ("samples read", s.read),
        ("tasks created", s.accepted),
        ("quarantined", s.quarantined),
        *((f"  {reason}", n) for reason, n in sorted(s.quarantine_reasons.items())),
        ("labels snapshot", s.snapshot_id),
        ("seconds", f"{s.seconds:.2f}"),
    ]
    if s.error:
        rows.append(("error", s.error))
    rows += [(name, f"{value:g}") for name, value in figures.items() if not name.startswith("annotator_")]
    console.print(table(f"Annotation run on {s.dataset}", ["", "value"], rows))


def status_cmd(dataset: DatasetArg, json_out: JsonOpt = False) -> None:
    """The queue: backlog, throughput, agreement, annotators."""
    rt = open_runtime()
    st = annotation_status(rt, dataset)
    if json_out:
        print_json(st.model_dump())
        return
    _print_status(st)


def _print_status(st: AnnotationStatus) -> None:
    rows: list[tuple[str, Any]] = [
        ("labels", ", ".join(st.labels)),
        ("source dataset", st.source_dataset),
        ("waiting for people", st.backlog),
        ("oldest waiting", f"{st.oldest_age_s:.0f} s"),
        ("closed in the last hour", st.done_last_hour),
        ("hours to clear", _fmt(st.forecast_clear_h, 1)),
        ("expert review", st.expert_backlog),
        ("audits pending", st.audit_pending),
        ("agreement (Fleiss' kappa)", _fmt(st.agreement)),
        ("mean majority share", _fmt(st.majority_share)),
        ("accepted labels", st.labels_accepted),
        *((f"  {status}", n) for status, n in sorted(st.by_status.items())),
    ]
    console.print(table(f"Annotation of {st.dataset}", ["", "value"], rows))
    if st.annotators:
        _print_annotators(st.annotators)


def _print_annotators(people: list[Any]) -> None:
    console.print(
        table(
            "Annotators",
            ["annotator", "agreement", "tasks", "outlier", "quarantined"],
            [
                (
                    a.name,
                    _fmt(a.agreement),
                    a.tasks,
                    "yes" if a.outlier else "",
                    f"yes: {a.reason}" if a.quarantined else "",
                )
                for a in people
            ],
        )
    )


def annotators_cmd(dataset: DatasetArg, json_out: JsonOpt = False) -> None:
    """Each annotator's agreement with consensus, outlier and quarantine flags."""
    rt = open_runtime()
    people = annotator_status(rt, dataset)
    if json_out:
        print_json([a.model_dump() for a in people])
        return
    if not people:
        console.print(f"nobody has answered in {dataset} yet")
        return
    _print_annotators(people)


def export_cmd(
    dataset: DatasetArg,
    out: Annotated[Path, typer.Option(help="Write Label Studio tasks (JSON) here.")],
    config: Annotated[Path | None, typer.Option(help="Also write the labelling config (XML) here.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many tasks, highest priority first.")] = None,
) -> None:
    """Export the tasks waiting for people, with the model's labels as predictions."""
    rt = open_runtime()
    tasks, xml = export_label_studio(rt, dataset, limit=limit)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tasks, indent=2), encoding="utf-8")
    if config is not None:
        config.write_text(xml, encoding="utf-8")
    console.print(f"{len(tasks)} tasks written to {out}" + (f", labelling config to {config}" if config else ""))


def import_cmd(
    dataset: DatasetArg,
    export: Annotated[Path, typer.Argument(help="A Label Studio JSON export.")],
    json_out: JsonOpt = False,
) -> None:
    """Import people's answers from a Label Studio JSON export."""
    rt = open_runtime()
    report = import_label_studio(rt, dataset, read_json_file(export))
    if json_out:
        print_json(report.model_dump())
        return
    console.print(
        f"{report.submitted} of {report.annotations} answers imported; "
        f"{report.ready_for_consensus} tasks have enough answers (closed at the next `dataops annotate run`)"
    )
    if report.refused:
        console.print(
            table("Refused", ["task", "annotator", "reason"], [(r.task_id, r.annotator, r.reason) for r in report.refused])
        )


def label_cmd(
    dataset: DatasetArg,
    annotator: Annotated[str, typer.Option(help="Your annotator name.")],
    n: Annotated[int, typer.Option("--n", help="Tasks to label in this session.")] = 10,
) -> None:
    """Label tasks in the terminal: each item and the model's proposal, then your label."""
    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    rt = open_runtime()
    project = project_of(rt, dataset)
    tasks = tasks_for(rt, dataset, annotator, n)
    if not tasks:
        console.print(f"no tasks waiting for {annotator} in {dataset}")
        return
    choices = ", ".join(project.labels)
    done = 0
    for i, task in enumerate(tasks, start=1):
        console.rule(f"task {i} of {len(tasks)} · sample {task.sample_id}")
        if task.modality == "text":
            console.print(str(task.meta.get("text", "")), markup=False)
        else:
            console.print(f"image {task.uri} ({task.meta.get('width', '?')}x{task.meta.get('height', '?')})", markup=False)
        if task.auto_label is not None:
            console.print(f"model proposes: {task.auto_label} ({_fmt(task.auto_confidence, 2)})", markup=False)
        while True:
            answer = typer.prompt(f"label [{choices}] (s = skip, q = quit)").strip()
            if answer in ("s", "q") or answer in project.labels:
                break
            err_console.print(f"unknown label {answer!r}; labels: {choices}", markup=False)
        if answer == "q":
            break
        if answer == "s":
            continue
        submit_label(rt, dataset, task.id, annotator, answer)
        done += 1
    console.print(f"{done} answers recorded for {annotator}")


@review_app.command("list")
def review_list_cmd(dataset: DatasetArg, json_out: JsonOpt = False) -> None:
    """Tasks waiting for an expert, with the answers people gave."""
    rt = open_runtime()
    items = review_list(rt, dataset)
    if json_out:
        print_json([i.model_dump() for i in items])
        return
    if not items:
        console.print(f"no tasks waiting for expert review in {dataset}")
        return
    rows = [
        (
            i.task_id,
            i.sample_id,
            ", ".join(f"{label}×{count}" for label, count in i.votes.items()),
            _fmt(i.agreement, 2),
            f"{i.auto_label} ({_fmt(i.auto_confidence, 2)})" if i.auto_label else "-",
        )
        for i in items
    ]
    console.print(table(f"Expert review in {dataset}", ["task", "sample", "answers", "agreement", "model"], rows))


@review_app.command("decide")
def review_decide_cmd(
    dataset: DatasetArg,
    task: Annotated[str, typer.Argument(help="Task id or sample id.")],
    expert: Annotated[str, typer.Option(help="The expert's name.")],
    label: Annotated[str | None, typer.Option(help="The correct label.")] = None,
    reject: Annotated[bool, typer.Option("--reject", help="Nothing to label here: reject the task.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Settle a task in expert review with a label (or reject it)."""
    if (label is None) == (not reject):
        raise InputError("give either --label or --reject")
    rt = open_runtime()
    row = review_decide(rt, dataset, task, expert=expert, label=label)
    if json_out:
        print_json({"task_id": row.id, "sample_id": row.sample_id, "status": row.status, "label": row.final_label})
        return
    console.print(f"task {row.id} ({row.sample_id}): {row.status}" + (f" as {row.final_label}" if row.final_label else ""))
