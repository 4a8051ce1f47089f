"""A drift report a person reads: one self-contained HTML page (inline CSS
and SVG drawn here, no scripts, no external files).

The page opens with the verdict (dataset drift, the share of drifted
columns, label drift) and a summary table of every column, worst first.
Then, for each drifted column, the reference and current distributions are
drawn on one chart — overlaid histograms on shared bins for a numeric
column, side-by-side bars per category for a categorical one — with the
missing rates beside them, so the shift is visible at a glance.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from app.errors import InputError
from pipelines.quality._drift import _numeric_values
from pipelines.quality._drift_io import as_table
from pipelines.quality._drift_models import SEVERITY_RANK, ColumnDrift, DriftReport
from pipelines.quality._drift_stats import category_counts

__all__ = ["render_html", "write_html"]

_REF, _CUR = "#3b6fb6", "#e8822a"
_W, _H = 640, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 120, 18, 58
_HIST_BINS = 30
_MAX_BARS = 15

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d232b;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:16px;margin:0 0 4px}
.verdict{padding:10px 14px;border-radius:6px;margin:12px 0;font-weight:600}
.sev-critical{background:#fde2e1}.sev-warning{background:#fff2cc}.sev-none{background:#e6f4ea}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:left}
th{background:#f4f6f8;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.badge.critical{background:#d93025;color:#fff}.badge.warning{background:#f6b100;color:#1d232b}.badge.none{background:#cfe8d6;color:#1d232b}
.card{border:1px solid #e3e6ea;border-radius:8px;padding:14px 16px;margin:16px 0}
.meta{color:#56606b;font-size:13px}ul.reasons{margin:6px 0 8px 18px;padding:0}
"""


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "–"
    if v == 0:
        return "0"
    if abs(v) >= 1e6 or abs(v) < 1e-3:
        return f"{v:.{digits - 1}e}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}f}"


def _pct(v: float) -> str:
    return f"{v:.1%}" if v < 0.995 or v == 1 else f"{v:.2%}"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


# --- distributions ---------------------------------------------------------------
def _numeric_hist(ref: pa.ChunkedArray, cur: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _numeric_values(ref).astype(np.float64)
    y = _numeric_values(cur).astype(np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    both = [v for v in (x, y) if v.size]
    if not both:
        return np.array([0.0, 1.0]), np.zeros(1), np.zeros(1)
    lo = min(float(np.quantile(v, 0.001)) for v in both)
    hi = max(float(np.quantile(v, 0.999)) for v in both)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, _HIST_BINS + 1)

    def shares(v: np.ndarray) -> np.ndarray:
        if not v.size:
            return np.zeros(_HIST_BINS)
        counts, _ = np.histogram(np.clip(v, lo, hi), bins=edges)
        return counts / v.size

    return edges, shares(x), shares(y)


def _category_bars(ref: pa.ChunkedArray, cur: pa.ChunkedArray) -> tuple[list[str], np.ndarray, np.ndarray]:
    cats, rc, cc = category_counts(ref, cur)
    rs = rc / rc.sum() if rc.sum() else rc.astype(np.float64)
    cs = cc / cc.sum() if cc.sum() else cc.astype(np.float64)
    order = np.argsort(-np.maximum(rs, cs), kind="stable")
    names = [str(v) for v in cats.to_pylist()]
    keep = order[:_MAX_BARS]
    labels = [names[i] for i in keep]
    r, c = rs[keep], cs[keep]
    if order.size > _MAX_BARS:
        rest = order[_MAX_BARS:]
        labels.append(f"(other {rest.size})")
        r, c = np.append(r, rs[rest].sum()), np.append(c, cs[rest].sum())
    return labels, r, c


# --- SVG -------------------------------------------------------------------------
def _axes(top: float) -> list[str]:
    plot_h = _H - _TOP - _BOTTOM
    out = []
    for frac in (0, 0.5, 1):
        y = _TOP + plot_h * (1 - frac)
        out.append(f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e6ea"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_pct(top * frac)}</text>')
    return out


def _legend(missing: tuple[float, float]) -> list[str]:
    x0 = _W - _RIGHT + 16
    out = [
        f'<rect x="{x0}" y="{_TOP}" width="12" height="12" fill="{_REF}" fill-opacity="0.55"/>',
        f'<text x="{x0 + 18}" y="{_TOP + 10}">reference</text>',
        f'<rect x="{x0}" y="{_TOP + 18}" width="12" height="12" fill="{_CUR}" fill-opacity="0.55"/>',
        f'<text x="{x0 + 18}" y="{_TOP + 28}">current</text>',
    ]
    if max(missing) > 0:  # missing rates on their own 0–100 % scale
        base, full = _H - _BOTTOM, 90.0
        for k, (share, colour) in enumerate(zip(missing, (_REF, _CUR), strict=True)):
            h = full * share
            x = x0 + 8 + k * 30
            out.append(
                f'<rect x="{x}" y="{base - h:.1f}" width="22" height="{h:.1f}" fill="{colour}" fill-opacity="0.8"/>'
            )
            out.append(f'<text x="{x + 11}" y="{base - h - 4:.1f}" text-anchor="middle">{_pct(share)}</text>')
        out.append(f'<text x="{x0 + 38}" y="{base + 16}" text-anchor="middle">missing</text>')
    return out


def _svg(column: str, body: list[str], top: float, missing: tuple[float, float]) -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" data-column="{_e(column)}" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="system-ui,sans-serif" font-size="11" fill="#1d232b" role="img" '
        f'aria-label="reference and current distribution of {_e(column)}">',
        *_axes(top),
        *body,
        f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_H - _BOTTOM}" y2="{_H - _BOTTOM}" stroke="#8a939c"/>',
        *_legend(missing),
        "</svg>",
    ]
    return "\n".join(parts)


def _numeric_svg(column: str, edges: np.ndarray, r: np.ndarray, c: np.ndarray, missing: tuple[float, float]) -> str:
    top = max(float(r.max(initial=0)), float(c.max(initial=0)), 1e-9) * 1.1
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    bw = plot_w / len(r)
    body = []
    for shares, colour in ((r, _REF), (c, _CUR)):
        for i, s in enumerate(shares):
            if s <= 0:
                continue
            h = plot_h * s / top
            body.append(
                f'<rect x="{_LEFT + i * bw:.1f}" y="{_TOP + plot_h - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                f'fill="{colour}" fill-opacity="0.5"><title>{_fmt(edges[i])} – {_fmt(edges[i + 1])}: {_pct(s)}</title></rect>'
            )
    for k in range(5):
        frac = k / 4
        x = _LEFT + plot_w * frac
        value = edges[0] + (edges[-1] - edges[0]) * frac
        body.append(f'<text x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">{_e(_fmt(value))}</text>')
    return _svg(column, body, top, missing)


def _categorical_svg(column: str, labels: list[str], r: np.ndarray, c: np.ndarray, missing: tuple[float, float]) -> str:
    top = max(float(r.max(initial=0)), float(c.max(initial=0)), 1e-9) * 1.1
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = plot_w / max(len(labels), 1)
    bw = slot * 0.38
    body = []
    for i, label in enumerate(labels):
        x = _LEFT + i * slot + slot * 0.12
        for k, (share, colour) in enumerate(((r[i], _REF), (c[i], _CUR))):
            h = plot_h * share / top
            body.append(
                f'<rect x="{x + k * bw:.1f}" y="{_TOP + plot_h - h:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                f'fill="{colour}" fill-opacity="0.8"><title>{_e(label)}: {_pct(share)}</title></rect>'
            )
        short = label if len(label) <= 14 else label[:13] + "…"
        cx, cy = _LEFT + (i + 0.5) * slot, _H - _BOTTOM + 12
        body.append(
            f'<text x="{cx:.1f}" y="{cy}" text-anchor="end" transform="rotate(-30 {cx:.1f} {cy})">{_e(short)}</text>'
        )
    return _svg(column, body, top, missing)


def _chart(c: ColumnDrift, ref: pa.Table, cur: pa.Table) -> str:
    missing = (c.missing_ref, c.missing_cur)
    rcol = ref.column(c.name) if c.name in ref.column_names else None
    ccol = cur.column(c.name) if c.name in cur.column_names else None
    if rcol is None and ccol is None:
        return ""
    if rcol is None:
        rcol = pa.chunked_array([], type=ccol.type)  # type: ignore[union-attr]
    if ccol is None:
        ccol = pa.chunked_array([], type=rcol.type)
    try:
        if not rcol.type.equals(ccol.type):
            rcol, ccol = rcol.cast(pa.string()), ccol.cast(pa.string())
        if c.kind == "numeric":
            edges, r, cc = _numeric_hist(rcol, ccol)
            return _numeric_svg(c.name, edges, r, cc, missing)
        if c.kind == "categorical":
            labels, r, cc = _category_bars(rcol, ccol)
            return _categorical_svg(c.name, labels, r, cc, missing)
    except (pa.ArrowException, InputError):
        pass  # a column whose values cannot be drawn: its missing rates still can
    return _categorical_svg(c.name, [], np.zeros(0), np.zeros(0), missing)


# --- page ------------------------------------------------------------------------
def _row(c: ColumnDrift) -> str:
    cells = [
        f"<td>{_e(c.name)}</td><td>{c.kind}</td><td>{c.test}</td>",
        f'<td class="num">{_fmt(c.statistic)}</td><td class="num">{_fmt(c.p_value)}</td>',
        f'<td class="num">{_fmt(c.psi)}</td><td class="num">{_fmt(c.mean_shift)}</td>',
        f'<td class="num">{_fmt(c.std_shift)}</td>',
        f'<td class="num">{_pct(c.missing_ref)} → {_pct(c.missing_cur)}</td>',
        f'<td><span class="badge {c.severity}">{c.severity}</span></td><td>{_e("; ".join(c.reasons))}</td>',
    ]
    return f'<tr class="sev-{c.severity if c.drifted else "none"}">' + "".join(cells) + "</tr>"


def _card(c: ColumnDrift, chart: str, is_label: bool) -> str:
    stats = (
        f"{c.test.upper()} statistic {_fmt(c.statistic)}, p {_fmt(c.p_value)} · PSI {_fmt(c.psi)}"
        + (f" · mean shift {_fmt(c.mean_shift)} σ · std shift {_fmt(c.std_shift)} σ" if c.kind == "numeric" else "")
        + f" · missing {_pct(c.missing_ref)} → {_pct(c.missing_cur)} · values {c.reference_count:,} → {c.current_count:,}"
    )
    reasons = "".join(f"<li>{_e(r)}</li>" for r in c.reasons)
    title = f"label column {c.name}" if is_label else c.name
    return (
        f'<div class="card"><h3>{_e(title)} <span class="badge {c.severity}">{c.severity}</span></h3>'
        f'<div class="meta">{_e(stats)}</div><ul class="reasons">{reasons}</ul>{chart}</div>'
    )


def render_html(
    report: DriftReport,
    reference: Any,
    current: Any,
    *,
    title: str = "Drift report",
    reference_name: str = "reference",
    current_name: str = "current",
) -> str:
    """The report as one HTML page. ``reference`` and ``current`` are the
    frames the report was computed on (tables or DataFrames): the charts of
    the drifted columns are drawn from them."""
    ref, cur = as_table(reference, "reference"), as_table(current, "current")
    label = report.label_drift.name if report.label_drift is not None else None
    cols = sorted(report.columns, key=lambda c: (-SEVERITY_RANK[c.severity], -(c.psi or 0.0), c.name))
    drifted = [c for c in cols if c.drifted]
    verdict_sev = "critical" if report.dataset_drift else report.severity
    verdict = (
        f"{'Dataset drift' if report.dataset_drift else 'No dataset drift'}: {len(report.drifted_columns)} of "
        f"{len(report.columns)} columns drifted ({report.drifted_share:.0%}; dataset drift from "
        f"{report.config.dataset_drift_share:.0%})"
    )
    if report.label_drift is not None:
        verdict += f" · label {label!r}: {'drifted' if report.label_drift.drifted else 'stable'}"
    cards = []
    if report.label_drift is not None and report.label_drift.drifted:
        cards.append(_card(report.label_drift, _chart(report.label_drift, ref, cur), True))
    cards += [_card(c, _chart(c, ref, cur), False) for c in drifted]
    cfg = report.config
    thresholds = (
        f"PSI {cfg.psi_warning}/{cfg.psi_critical} (warning/critical, {cfg.bins} reference-quantile bins) · "
        f"KS p < {cfg.ks_alpha} and D ≥ {cfg.ks_min_statistic} (critical {cfg.ks_critical_statistic}) · "
        f"chi-square p < {cfg.chi2_alpha} and V ≥ {cfg.chi2_min_effect} (critical {cfg.chi2_critical_effect}) · "
        f"missing-rate change {cfg.missing_warning}/{cfg.missing_critical}"
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "column",
            "kind",
            "test",
            "statistic",
            "p-value",
            "PSI",
            "mean Δ σ",
            "std Δ σ",
            "missing",
            "severity",
            "why",
        )
    )
    label_rows = _row(report.label_drift) if report.label_drift is not None else ""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<div class="meta">{_e(reference_name)} ({report.reference_rows:,} rows) → {_e(current_name)} ({report.current_rows:,} rows) · generated {generated}</div>
<div class="verdict sev-{verdict_sev}">{_e(verdict)}</div>
<div class="meta">Thresholds: {_e(thresholds)}</div>
<h2>Drifted columns</h2>
{"".join(cards) or "<p>None: every column is within the thresholds.</p>"}
<h2>All columns</h2>
<table><thead><tr>{head}</tr></thead><tbody>{label_rows}{"".join(_row(c) for c in cols)}</tbody></table>
</body></html>
"""


def write_html(report: DriftReport, reference: Any, current: Any, path: str | Path, **kwargs: Any) -> Path:
    """:func:`render_html` written to ``path`` (folders created); returns the path."""
    out = Path(path).expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(report, reference, current, **kwargs), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the HTML report to {out}: {exc.strerror or exc}") from None
    return out
