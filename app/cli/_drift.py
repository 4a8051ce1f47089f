"""``dataops drift``: reference vs current, per column.

Drift is a finding, not a failure: the command exits 0 whatever it finds
(read ``dataset_drift`` / ``severity`` in the JSON to gate on it); bad input
(a missing file, an unknown dataset or snapshot, an unknown column) is one
``dataops: error: …`` line and exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli._common import console, open_runtime, print_json, table
from app.errors import InputError
from pipelines.quality._drift import detect_drift
from pipelines.quality._drift_io import load_frame, parse_spec
from pipelines.quality._drift_models import SEVERITY_RANK, ColumnDrift, DriftConfig, DriftReport
from pipelines.quality._report import write_html

__all__ = ["register", "report_dict"]

_STYLE = {"critical": "bold red", "warning": "yellow", "none": "green"}


def register(app: typer.Typer) -> None:
    app.command("drift")(drift_cmd)


def _config(path: Path | None, bins: int | None) -> DriftConfig:
    data: dict[str, Any] = {}
    if path is not None:
        import yaml

        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read drift config {path}: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InputError(f"drift config {path} must be a mapping of DriftConfig fields")
        data.update(loaded or {})
    if bins is not None:
        data["bins"] = bins
    from pydantic import ValidationError

    try:
        return DriftConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        raise InputError(f"invalid drift config: {where}: {first['msg']}") from None


def report_dict(report: DriftReport, reference: str, current: str) -> dict[str, Any]:
    return {"reference": reference, "current": current, **report.model_dump(mode="json")}


def _cell(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def _row(c: ColumnDrift, label: bool = False) -> tuple[str, ...]:
    sev = f"[{_STYLE[c.severity]}]{c.severity}[/]"
    return (
        f"{c.name} (label)" if label else c.name,
        c.kind,
        c.test,
        _cell(c.statistic),
        _cell(c.p_value),
        _cell(c.psi),
        _cell(c.mean_shift),
        _cell(c.std_shift),
        f"{c.missing_ref:.1%} → {c.missing_cur:.1%}",
        sev,
        "; ".join(c.reasons),
    )


def print_report(report: DriftReport, reference: str, current: str) -> None:
    cols = sorted(report.columns, key=lambda c: (-SEVERITY_RANK[c.severity], -(c.psi or 0.0)))
    rows = ([_row(report.label_drift, True)] if report.label_drift is not None else []) + [_row(c) for c in cols]
    headers = [
        "column",
        "kind",
        "test",
        "statistic",
        "p-value",
        "PSI",
        "mean Δσ",
        "std Δσ",
        "missing",
        "severity",
        "why",
    ]
    console.print(table(f"Drift: {reference} → {current}", headers, rows))
    verdict = "[bold red]dataset drift[/]" if report.dataset_drift else "[green]no dataset drift[/]"
    line = (
        f"{verdict}: {len(report.drifted_columns)} of {len(report.columns)} columns drifted "
        f"({report.drifted_share:.0%}; threshold {report.config.dataset_drift_share:.0%}) · "
        f"{report.reference_rows:,} → {report.current_rows:,} rows · {report.seconds:.2f} s"
    )
    if report.label_drift is not None:
        state = "[bold red]drifted[/]" if report.label_drift.drifted else "[green]stable[/]"
        line += f" · label {report.label_drift.name!r}: {state}"
    console.print(line)


def drift_cmd(
    reference: Annotated[str, typer.Option("--reference", "-r", help="Parquet file/folder or DATASET[@SNAPSHOT].")],
    current: Annotated[str, typer.Option("--current", "-c", help="Parquet file/folder or DATASET[@SNAPSHOT].")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to compare (default: all).")] = None,
    label: Annotated[str | None, typer.Option(help="Label column: its class distribution is compared.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML report here.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML of DriftConfig thresholds to override.")] = None,
    bins: Annotated[int | None, typer.Option(help="Reference-quantile bins of numeric PSI (default 10).")] = None,
) -> None:
    """Compare CURRENT with REFERENCE, column by column (KS, PSI, chi-square,
    missing rate). Exit 0 whether or not it drifted; 1 on bad input."""
    cfg = _config(config, bins)
    wanted = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if columns is not None and not wanted:
        raise InputError("--columns is empty")
    needs_rt = any(parse_spec(s)[0] == "dataset" for s in (reference, current))
    rt = open_runtime(quiet=True) if needs_rt else None
    try:
        ref = load_frame(reference, rt)
        cur = load_frame(current, rt)
        report = detect_drift(ref, cur, columns=wanted, label=label, config=cfg)
        if html is not None:
            write_html(report, ref, cur, html, reference_name=reference, current_name=current)
    finally:
        if rt is not None:
            rt.close()
    if json_out:
        out = report_dict(report, reference, current)
        if html is not None:
            out["html"] = str(html)
        print_json(out)
        return
    print_report(report, reference, current)
    if html is not None:
        console.print(f"HTML report: {html}")
