"""A self-contained HTML report of one enrichment version: for every issue
type a score histogram (inline SVG) and the worst examples (images as inline
base64 PNG thumbnails, texts as excerpts, audio as waveforms), then the
duplicates next to their originals."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlmodel import Session, col, select

from app.errors import DataOpsError, InputError
from pipelines.enrichment._decode import decode_image_array, decode_utf8, decode_wav
from pipelines.enrichment._service import version_row
from pipelines.enrichment._store import all_issues, read_enrichment
from pipelines.runtime import Runtime, SampleRow, utcnow

__all__ = ["render_report", "write_report"]

_EXAMPLES = 6
_BINS = 20
_THUMB = 96
_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.ex{display:inline-block;margin:.3em;vertical-align:top;width:150px;font-size:.8em}
.ex img{display:block;max-width:140px;image-rendering:pixelated}.ex pre{white-space:pre-wrap;font-size:.85em}
h2{margin-top:1.6em;border-bottom:1px solid #ddd}.muted{color:#777}
"""


def _histogram(scores: Sequence[float], flagged: Sequence[bool]) -> str:
    """Stacked bars over [0, 1]: flagged records in red, the rest in grey."""
    w, h, pad = 420, 120, 20
    edges = np.linspace(0.0, 1.0, _BINS + 1)
    arr, flags = np.clip(np.asarray(scores, dtype=float), 0, 1), np.asarray(flagged, dtype=bool)
    ok, bad = np.histogram(arr[~flags], edges)[0], np.histogram(arr[flags], edges)[0]
    top = max(1, int((ok + bad).max()))
    bw = (w - 2 * pad) / _BINS
    bars = []
    for i in range(_BINS):
        x = pad + i * bw
        for count, base, colour in ((ok[i], 0, "#9aa"), (bad[i], ok[i], "#d55")):
            if count:
                y0 = h - pad - (base + count) / top * (h - 2 * pad)
                bars.append(
                    f'<rect x="{x:.1f}" y="{y0:.1f}" width="{bw - 1:.1f}" '
                    f'height="{count / top * (h - 2 * pad):.1f}" fill="{colour}"><title>{int(count)}</title></rect>'
                )
    axis = (
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#555"/>'
        f'<text x="{pad}" y="{h - 4}" font-size="10">0</text><text x="{w - pad - 6}" y="{h - 4}" font-size="10">1</text>'
        f'<text x="{pad}" y="12" font-size="10">max {top}</text>'
    )
    return f'<svg width="{w}" height="{h}" role="img">{"".join(bars)}{axis}</svg>'


def _thumbnail(modality: str, data: bytes) -> str:
    try:
        if modality == "image":
            img = Image.fromarray(decode_image_array(data))
            img.thumbnail((_THUMB, _THUMB))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
        if modality == "text":
            return f"<pre>{html.escape(decode_utf8(data)[:200])}</pre>"
        if modality == "audio":
            x, _ = decode_wav(data)
            env = np.abs(x[: x.size - x.size % 140].reshape(140, -1)).max(axis=1) if x.size >= 140 else np.abs(x)
            pts = " ".join(f"{i},{20 - 18 * float(v):.1f} {i},{20 + 18 * float(v):.1f}" for i, v in enumerate(env))
            return f'<svg width="140" height="40"><polyline points="{pts}" stroke="#357" fill="none"/></svg>'
    except DataOpsError as exc:
        return f'<span class="muted">unreadable: {html.escape(str(exc))}</span>'
    return ""


def _example(rt: Runtime, uris: dict[str, str], modality: str, sample_id: str, caption: str) -> str:
    uri = uris.get(sample_id)
    body = '<span class="muted">no bytes</span>'
    if uri:
        try:
            body = _thumbnail(modality, rt.objects.get(uri))
        except DataOpsError as exc:
            body = f'<span class="muted">{html.escape(str(exc))}</span>'
    return f'<div class="ex">{body}<code>{html.escape(sample_id)}</code><br>{html.escape(caption)}</div>'


def _uris(rt: Runtime, dataset: str, keys: set[str]) -> dict[str, str]:
    """``{key: uri}`` for sample ids of ``dataset`` and ``other/sample_id`` keys."""
    wanted: dict[str, set[str]] = {}
    for key in keys:
        ds, sep, sid = key.partition("/")
        wanted.setdefault(ds if sep else dataset, set()).add(sid if sep else key)
    out: dict[str, str] = {}
    with Session(rt.engine) as s:
        for ds, ids in wanted.items():
            rows = s.exec(select(SampleRow.sample_id, SampleRow.uri).where(SampleRow.dataset == ds, col(SampleRow.sample_id).in_(ids)))
            for sid, uri in rows:
                out[sid if ds == dataset else f"{ds}/{sid}"] = uri
    return out


def render_report(rt: Runtime, dataset: str, version: str | None = None) -> tuple[str, dict[str, int]]:
    """The HTML, and ``{issue: flagged count}``."""
    row = version_row(rt, dataset, version)
    rows: list[dict[str, Any]] = read_enrichment(rt, dataset, row.version).to_pylist()
    dups = [r for r in rows if r["status"] == "duplicate"]
    keys = {r["sample_id"] for r in rows} | {r["duplicate_of"] for r in dups if r["duplicate_of"]}
    uris = _uris(rt, dataset, keys)
    flagged_counts: dict[str, int] = {}
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Enrichment report: {html.escape(dataset)}</title>"
        f"<style>{_CSS}</style></head><body><h1>Enrichment report: {html.escape(dataset)} {html.escape(row.version)}</h1>",
        f"<p class='muted'>embedding model {html.escape(row.embedding_model)} (v{row.embedding_model_version}), "
        f"labeler {html.escape(row.label_model)} (v{row.label_model_version}), raw snapshot {row.raw_snapshot_id}, "
        f"generated {utcnow():%Y-%m-%d %H:%M} UTC</p>",
    ]
    summary = [
        ("samples", len(rows)),
        ("flagged (any issue)", sum(1 for r in rows if r["issues"])),
        ("stopped by a quality issue", sum(1 for r in rows if r["quality_blocked"])),
        ("duplicates", len(dups)),
        ("auto-label proposals", sum(1 for r in rows if r["auto_label"] is not None)),
        ("auto-labels accepted", sum(1 for r in rows if r["auto_label_accepted"])),
        ("embedded", sum(1 for r in rows if r["embedded_kinds"])),
    ]
    parts.append("<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in summary) + "</table>")
    for issue in all_issues():
        scored = [r for r in rows if r.get(f"score_{issue}") is not None]
        if not scored:
            continue
        flags = [bool(r.get(f"flag_{issue}")) for r in scored]
        flagged_counts[issue] = sum(flags)
        worst = sorted(scored, key=lambda r: -float(r[f"score_{issue}"]))
        shown = [r for r in worst if r.get(f"flag_{issue}")][:_EXAMPLES]
        note = "flagged, highest score first"
        if not shown:
            shown, note = worst[:3], "none flagged; the highest scores"
        parts.append(f"<h2>{html.escape(issue)}: {sum(flags)} flagged of {len(scored)}</h2>")
        parts.append(_histogram([float(r[f"score_{issue}"]) for r in scored], flags))
        parts.append(f"<p class='muted'>{note}</p>")
        parts.extend(
            _example(rt, uris, r["modality"], r["sample_id"], f"{issue} {float(r[f'score_{issue}']):.2f}") for r in shown
        )
    parts.append(f"<h2>duplicates: {len(dups)}</h2>")
    for r in dups[:_EXAMPLES]:
        similarity = r["duplicate_similarity"]
        how = f"{r['duplicate_kind']} {similarity:.3f}" if similarity is not None else str(r["duplicate_kind"])
        parts.append("<div>")
        parts.append(_example(rt, uris, r["modality"], r["sample_id"], f"duplicate ({how})"))
        parts.append(_example(rt, uris, r["modality"], r["duplicate_of"], "original"))
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts), flagged_counts


def write_report(rt: Runtime, dataset: str, path: Path, version: str | None = None) -> dict[str, int]:
    """Write the report to ``path``; returns ``{issue: flagged count}``."""
    text, counts = render_report(rt, dataset, version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the report to {path}: {exc}") from exc
    return counts
