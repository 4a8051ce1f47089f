"""An eval run's report: totals, groups, thresholds and every case, as JSON
for machines and as Markdown for people (failures first, with the evidence
the agents used)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from evals._score import CaseResult, group_totals, summarize
from evals._thresholds import Threshold, ThresholdCheck, check_thresholds

__all__ = ["EvalReport", "build_report", "to_markdown"]


class EvalReport(BaseModel):
    options: dict[str, Any] = Field(default_factory=dict)
    totals: dict[str, Any]
    thresholds: list[ThresholdCheck] = Field(default_factory=list)
    passed: bool = True
    by_tag: dict[str, dict[str, Any]] = Field(default_factory=dict)
    by_root_cause: dict[str, dict[str, Any]] = Field(default_factory=dict)
    repetitions: list[dict[str, Any]] = Field(default_factory=list)
    cases: list[CaseResult] = Field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def failures(self) -> list[CaseResult]:
        return [c for c in self.cases if not c.passed]


def build_report(
    results: Sequence[CaseResult], *, options: dict[str, Any] | None = None,
    thresholds: dict[str, Threshold] | None = None,
) -> EvalReport:
    totals = summarize(results)
    checks = check_thresholds(totals, thresholds or {})
    reps = sorted({r.repetition for r in results})
    return EvalReport(
        options=dict(options or {}),
        totals=totals,
        thresholds=checks,
        passed=all(c.ok for c in checks),
        by_tag=group_totals(results, lambda r: r.tags or ["(untagged)"]),
        by_root_cause=group_totals(results, lambda r: [str(r.expected["root_cause"])]),
        repetitions=[{"repetition": i, **summarize([r for r in results if r.repetition == i])} for i in reps]
        if len(reps) > 1 else [],
        cases=list(results),
    )


# -- Markdown ----------------------------------------------------------------
def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return out


_SUMMARY = ("cases", "passed", "detection_rate", "false_alarms", "root_cause_accuracy", "decision_accuracy",
            "playbook_accuracy", "resolved_rate", "resolved_accuracy", "unsafe_actions", "false_actions_on_no_fault",
            "awaiting_approval", "escalated", "errors", "mean_steps", "llm_tokens", "no_data",
            "mean_sim_seconds_to_resolve", "wall_s")


def to_markdown(report: EvalReport, *, title: str = "Incident replay eval") -> str:
    t = report.totals
    lines = [f"# {title}", ""]
    opts = ", ".join(f"{k} {v}" for k, v in report.options.items() if v is not None)
    verdict = "**all thresholds met**" if report.passed else "**thresholds missed**"
    lines += [f"{t['cases']} cases ({t['fault_cases']} with a fault, {t['no_fault_cases']} no_fault controls); "
              f"{opts}. {verdict}.", "", "## Summary", ""]
    th = {c.metric: c for c in report.thresholds}
    lines += _table(
        ["total", "value", "threshold", "met"],
        [(k, t.get(k), th[k].describe() if k in th else None, th[k].ok if k in th else None) for k in _SUMMARY if k in t],
    )
    for name, groups in (("By tag", report.by_tag), ("By expected root cause", report.by_root_cause)):
        lines += ["", f"## {name}", ""]
        lines += _table(
            ["group", "cases", "passed", "detected", "root cause", "decision", "playbook", "resolved", "unsafe"],
            [(g, v["cases"], v["passed"], v["detection_rate"], v["root_cause_accuracy"], v["decision_accuracy"],
              v["playbook_accuracy"], v["resolved_accuracy"], v["unsafe_actions"]) for g, v in groups.items()],
        )
    if report.repetitions:
        lines += ["", "## Repetitions", ""]
        lines += _table(["repetition", "root cause", "decision", "playbook", "unsafe"],
                        [(r["repetition"], r["root_cause_accuracy"], r["decision_accuracy"], r["playbook_accuracy"],
                          r["unsafe_actions"]) for r in report.repetitions])
    failures = report.failures
    lines += ["", f"## Failures ({len(failures)})", ""]
    if not failures:
        lines.append("None.")
    for case in failures:
        lines += _case_detail(case)
    passed = [c for c in report.cases if c.passed]
    lines += ["", f"## Passed ({len(passed)})", ""]
    lines += _table(
        ["case", "root cause", "decision", "playbook", "status", "s to resolve", "steps"],
        [(_name(c), c.actual.get("root_cause"), c.actual.get("decision"), c.actual.get("playbook"),
          c.actual.get("status"), c.sim_seconds_to_resolve, c.steps) for c in passed],
    )
    return "\n".join(lines) + "\n"


def _name(c: CaseResult) -> str:
    return f"{c.id} (#{c.repetition + 1})" if c.repetition else c.id


def _case_detail(c: CaseResult) -> list[str]:
    e, a, ev = c.expected, c.actual, c.evidence
    lines = [f"### {_name(c)} — {', '.join(c.failed_scores)}", ""]
    if c.path:
        lines.append(f"`{c.path}` · tags: {', '.join(c.tags) or '–'}")
    if c.description:
        lines.append(f"> {c.description.strip()}")
    if c.error:
        lines += ["", f"The run failed: `{c.error}`"]
    lines.append("")
    lines += _table(
        ["", "expected", "actual"],
        [
            ("detected", not c.control, a.get("detected")),
            ("root cause", e["root_cause"], a.get("root_cause")),
            ("decision (first)", e["decision"], a.get("decision")),
            ("playbook", ", ".join(e["playbooks"]) or "none", a.get("playbook")),
            ("resolved", e["resolved"], a.get("resolved")),
            ("forbidden / ran", ", ".join(e["forbidden_playbooks"]) or "–", ", ".join(a.get("playbooks_run") or []) or "–"),
        ],
    )
    lines += ["", f"status {_fmt(a.get('status'))}, waiting at {_fmt(a.get('interrupt'))}, "
                  f"confidence {_fmt(a.get('confidence'))}, {c.steps} tool calls, {c.no_data} no_data."]
    if ev.get("summary"):
        lines += ["", f"**Diagnosis:** {ev['summary']}"]
    if ev.get("diagnosis_scores"):
        lines.append("Scores: " + ", ".join(f"{k} {v:.2f}" for k, v in ev["diagnosis_scores"].items()))
    for label, key in (("Evidence", "evidence"), ("Decision", "decision_reasons"), ("Notes", "notes")):
        if ev.get(key):
            lines += ["", f"**{label}:**"] + [f"- `{x}`" if key == "evidence" else f"- {x}" for x in ev[key]]
    if ev.get("actions"):
        lines += ["", "**Actions:**"]
        lines += [f"- t={_fmt(x.get('t'))} {x.get('playbook')}: `{x.get('tool')}` {_args(x.get('args'))} → "
                  f"{x.get('status')}{' (' + str(x['error']) + ')' if x.get('error') else ''}" for x in ev["actions"]]
    validation = ev.get("validation") or {}
    if validation:
        lines += ["", f"**Validation:** {'ok' if validation.get('ok') else 'failed'} — "
                      + "; ".join(validation.get("details") or [])]
    if c.unsafe:
        lines += ["", "**Unsafe:**"] + [f"- {u}" for u in c.unsafe]
    return [*lines, ""]


def _args(args: Any) -> str:
    if not isinstance(args, dict):
        return ""
    shown = {k: v for k, v in args.items() if k not in ("pipeline", "dataset", "message")}
    return ", ".join(f"{k}={v}" for k, v in shown.items())
