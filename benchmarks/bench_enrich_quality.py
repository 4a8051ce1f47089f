"""Image quality assessment: dataops' ``score_images`` + pHash against
cleanvision's ``Imagelab`` on the same images, in the same run; then text
embedding throughput of the bundled MiniLM.

cleanvision is not a project dependency; give it a virtual environment of its
own, once::

    python3 -m venv /tmp/cvenv && /tmp/cvenv/bin/pip install cleanvision

then, from the repository root::

    .venv/bin/python -m benchmarks.bench_enrich_quality --cleanvision-python /tmp/cvenv/bin/python
    .venv/bin/python -m benchmarks.bench_enrich_quality -n 500 --no-cleanvision --no-embed   # quicker

The images (``-n``, default 2000, 256x256 unless the defect is about size or
shape) are generated with a fixed seed: 40 % clean (crops of scikit-learn's
two sample photos, synthetic scenes of gradients, fractal texture and shapes,
handwritten digits pasted on such scenes), 7 % for each of the eight image
issues, and near-duplicate copies (resized down and back, brightened) of 2 %
of the clean ones. The generator is independent of the one the unit tests
tune against. All are written as PNG files.

Timing: cleanvision runs in its own interpreter (this file with
``--cleanvision-worker``) and times ``Imagelab(data_path=...).find_issues()``
with its default issue types (dark, light, odd_aspect_ratio, low_information,
exact and near duplicates, blurry, grayscale, odd_size) and its default
process pool. dataops is timed twice, single-process: from the same PNG files
(decode + ``score_images`` + ``phash_image`` + pairwise Hamming <= 6, the
ingestion default, for near duplicates), the like-for-like figure, and on the
decoded arrays alone. Flags are compared with the planted defects; "light" is
cleanvision's name for overexposed, and it has no noise detector.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE = 256
ISSUES = ("blurry", "noisy", "dark", "overexposed", "low_information", "odd_aspect_ratio", "odd_size", "grayscale")
DUP = "near_duplicates"
CLEANVISION_NAME = {issue: issue for issue in ISSUES} | {"overexposed": "light", "noisy": None}


# --- the images ----------------------------------------------------------------------
def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


class Generator:
    def __init__(self, seed: int) -> None:
        from sklearn.datasets import load_digits, load_sample_images

        self.rng = np.random.default_rng(seed)
        self.photos = [Image.fromarray(p) for p in load_sample_images().images]
        self.digits = load_digits().images / 16.0

    def clean(self, i: int, w: int = SIZE, h: int = SIZE) -> np.ndarray:
        kind = i % 3
        return self.photo(w, h) if kind == 0 else self.scene(w, h, digit=kind == 2)

    def photo(self, w: int, h: int) -> np.ndarray:
        rng = self.rng
        for _ in range(30):
            src = self.photos[int(rng.integers(2))]
            side = int(rng.integers(160, 420))
            cw, ch = min(src.width, int(side * w / max(w, h))), min(src.height, int(side * h / max(w, h)))
            x0, y0 = int(rng.integers(0, src.width - cw + 1)), int(rng.integers(0, src.height - ch + 1))
            img = np.asarray(src.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.LANCZOS))
            luma = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            if luma.std() >= 30 and np.abs(np.diff(luma, axis=1)).mean() >= 4:  # not just sky or bokeh
                break
        # Two source photos only: turn, mirror and swap colour channels so crops of one
        # region do not pass for near-duplicates of each other.
        img = np.rot90(img, int(rng.integers(4)))
        img = img[:, ::-1] if rng.random() < 0.5 else img
        return np.ascontiguousarray(img[:, :, rng.permutation(3)])

    def scene(self, w: int, h: int, digit: bool) -> np.ndarray:
        rng = self.rng
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(w, h)
        a = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(a) * xx + np.sin(a) * yy
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
        c0, c1 = rng.uniform(30, 225, 3), rng.uniform(30, 225, 3)
        fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
        f = np.hypot(fy, fx)
        f[0, 0] = 1.0
        tex = np.fft.irfft2((rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f**1.6, s=(h, w))
        tex = (tex - tex.mean()) / (tex.std() + 1e-9) * rng.uniform(6, 16)
        base = c0 + (c1 - c0) * ramp[..., None] + tex[..., None]
        img = Image.fromarray(_u8(base))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(4, 9))):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.06, 0.25) * max(w, h)
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = int(rng.integers(3))
            if shape == 0:
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
            elif shape == 1:
                draw.rectangle((cx - r, cy - r * rng.uniform(0.3, 1), cx + r, cy + r), fill=fill)
            else:
                pts = [(cx + r * np.cos(t), cy + r * np.sin(t)) for t in rng.uniform(0, 2 * np.pi, 3)]
                draw.polygon(pts, fill=fill)
        if digit:
            glyph = np.kron(self.digits[int(rng.integers(len(self.digits)))], np.ones((12, 12)))
            mask = Image.fromarray(_u8(glyph * 255)).filter(ImageFilter.GaussianBlur(0.7))
            colour = Image.new("RGB", mask.size, tuple(int(v) for v in rng.integers(0, 256, 3)))
            img.paste(colour, ((w - mask.width) // 2, (h - mask.height) // 2), mask)
        return _u8(np.asarray(img, np.float32) + rng.normal(0, rng.uniform(0.5, 1.5), (h, w, 3)))

    def damaged(self, i: int, issue: str) -> np.ndarray:
        rng = self.rng
        if issue == "odd_aspect_ratio":  # strips 2.7-4x as wide as tall (or tall), drawn or cropped that way
            long_, short = SIZE, int(SIZE / rng.uniform(2.7, 4.0))
            img = self.clean(i, long_, short)
            return img if i % 2 else np.ascontiguousarray(img.transpose(1, 0, 2))
        img = self.clean(i)
        pil, f = Image.fromarray(img), img.astype(np.float32)
        if issue == "blurry":
            return np.asarray(pil.filter(ImageFilter.GaussianBlur(rng.uniform(2.0, 4.0))))
        if issue == "noisy":
            return _u8(f + rng.normal(0, rng.uniform(10, 30), f.shape))
        if issue == "dark":  # underexposed: a gamma and a gain
            return _u8(255 * (f / 255) ** rng.uniform(1.0, 1.5) * rng.uniform(0.15, 0.32))
        if issue == "overexposed":  # a gain that pushes 20-50 % of the picture past full scale
            level = np.percentile(f.mean(axis=2), 100 * (1 - rng.uniform(0.2, 0.5)))
            return _u8(f * 255.0 / max(level, 1.0) + rng.uniform(0, 20))
        if issue == "odd_size":
            side = int(rng.integers(16, 41))
            return np.asarray(pil.resize((side, side), Image.Resampling.BOX))
        if issue == "grayscale":
            gray = np.asarray(pil.convert("L"))
            return gray if i % 2 else np.repeat(gray[..., None], 3, axis=2)
        if issue == "low_information":
            tone = rng.uniform(90, 210, 3)
            if i % 2:  # a blank wall: flat colour, faint ramp, grain
                flat = tone + np.linspace(-5, 5, SIZE)[None, :, None]
                return _u8(flat + rng.normal(0, 1.0, (SIZE, SIZE, 3)))
            fog = np.asarray(pil.filter(ImageFilter.GaussianBlur(10)), np.float32)  # a fogged frame
            return _u8(tone + (fog - fog.mean()) * rng.uniform(0.02, 0.05) + rng.normal(0, 0.8, f.shape))
        raise AssertionError(issue)

    def near_copy(self, img: np.ndarray) -> np.ndarray:
        side = int(self.rng.integers(200, 240))
        pil = Image.fromarray(img).resize((side, side), Image.Resampling.BILINEAR).resize((SIZE, SIZE))
        return _u8(np.asarray(pil, np.float32) + self.rng.uniform(3, 8))


def make_set(n: int, seed: int) -> tuple[list[np.ndarray], list[str], set[int]]:
    """Images, their planted label, and the indices planted as near-duplicate pairs."""
    gen = Generator(seed)
    n_each, n_dup = int(0.07 * n), int(0.02 * n)
    n_clean = n - n_each * len(ISSUES) - n_dup
    images = [gen.clean(i) for i in range(n_clean)]
    labels = ["clean"] * n_clean
    for issue in ISSUES:
        images += [gen.damaged(j, issue) for j in range(n_each)]
        labels += [issue] * n_each
    originals = gen.rng.choice(n_clean, size=n_dup, replace=False)
    dups = set(int(o) for o in originals)
    for o in originals:
        dups.add(len(images))
        images.append(gen.near_copy(images[int(o)]))
        labels.append(DUP)
    return images, labels, dups


def write_pngs(images: list[np.ndarray], folder: Path) -> list[Path]:
    paths = [folder / f"img{i:05d}.png" for i in range(len(images))]
    for img, path in zip(images, paths, strict=True):
        Image.fromarray(img).save(path, compress_level=1)
    return paths


# --- dataops ------------------------------------------------------------------------
def near_duplicate_members(hashes: list[int], max_distance: int = 6) -> set[int]:
    h = np.array(hashes, dtype=np.uint64)
    dist = np.bitwise_count(h[:, None] ^ h[None, :])
    np.fill_diagonal(dist, 64)
    return set(np.nonzero((dist <= max_distance).any(axis=1))[0].tolist())


def run_ours(images: list[np.ndarray], paths: list[Path], repeats: int, workers: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from pipelines.enrichment import score_images
    from pipelines.ingestion import phash_image

    def assess(arrays: list[np.ndarray]) -> tuple[list[Any], list[int]]:
        return score_images(arrays), [phash_image(Image.fromarray(a)) for a in arrays]

    def assess_files(chunk: list[Path]) -> tuple[list[Any], list[int]]:
        return assess([np.asarray(Image.open(p)) for p in chunk])

    def from_files(n_threads: int) -> tuple[list[Any], set[int]]:
        # Batches of 128 files, as a pipeline with n_threads workers would take them;
        # PIL's decoders and numpy release the GIL, so threads share the cores.
        chunks = [paths[k : k + 128] for k in range(0, len(paths), 128)]
        with ThreadPoolExecutor(n_threads) as pool:
            parts = list(pool.map(assess_files, chunks))
        reports = [r for part in parts for r in part[0]]
        return reports, near_duplicate_members([h for part in parts for h in part[1]])

    assess(images[:50])  # warm-up: imports, first-call costs
    timings: dict[str, list[float]] = {"files_1": [], f"files_{workers}": [], "in_memory": []}
    reports: list[Any] = []
    dups: set[int] = set()
    for _ in range(repeats):
        for n_threads in dict.fromkeys((1, workers)):
            t0 = time.perf_counter()
            reports, dups = from_files(n_threads)
            timings[f"files_{n_threads}"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, hashes = assess(images)
        near_duplicate_members(hashes)
        timings["in_memory"].append(time.perf_counter() - t0)
    flags = [set(r.issues) | ({DUP} if i in dups else set()) for i, r in enumerate(reports)]
    return {"timings": timings, "flags": flags}


# --- cleanvision, in its own interpreter -------------------------------------------------
def cleanvision_worker(folder: str, n_jobs: int | None) -> None:
    """Run in the cleanvision venv: print one JSON line with the timing and flags."""
    import cleanvision
    from cleanvision import Imagelab

    lab = Imagelab(data_path=folder, verbose=False)
    t0 = time.perf_counter()
    lab.find_issues(n_jobs=n_jobs, verbose=False)
    seconds = time.perf_counter() - t0
    frame = lab.issues
    columns = [c for c in frame.columns if c.startswith("is_") and c.endswith("_issue")]
    flags = {Path(str(path)).name: [c[3:-6] for c in columns if bool(row[c])] for path, row in frame.iterrows()}
    out = {"version": cleanvision.__version__, "seconds": seconds, "flags": flags, "n_jobs": n_jobs}
    sys.stdout.write(json.dumps(out) + "\n")


def run_cleanvision(python: str, folder: Path, n_jobs: int | None) -> dict[str, Any] | None:
    cmd = [python, str(Path(__file__).resolve()), "--cleanvision-worker", str(folder), str(n_jobs or 0)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(f"cleanvision run failed:\n{proc.stderr[-2000:]}\n")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- scoring the flags ------------------------------------------------------------------
def precision_recall(flags: list[set[str]], truth: list[bool], name: str) -> tuple[float, float]:
    flagged = np.array([name in f for f in flags])
    t = np.array(truth)
    tp = int((flagged & t).sum())
    return tp / max(1, int(flagged.sum())), tp / max(1, int(t.sum()))


def embed_throughput(batch_sizes: list[int], n_texts: int) -> tuple[dict[int, float], float]:
    import importlib
    import inspect

    from knowledge_base import MiniLMEmbedder

    texts: list[str] = []
    for name in ("argparse", "logging", "pathlib", "json", "collections", "email.message", "asyncio", "subprocess"):
        for _, obj in inspect.getmembers(importlib.import_module(name)):
            doc = inspect.getdoc(obj)
            first = doc.split("\n\n")[0] if doc else ""
            if len(first) >= 40:  # a paragraph of prose, like a caption or a short record
                texts.append(first)
    texts = (texts * (n_texts // max(1, len(texts)) + 1))[:n_texts]
    rates = {}
    for b in batch_sizes:
        # The class behind knowledge_base.get_embedder(), at this batch size; loading is off the clock.
        embedder = MiniLMEmbedder(batch_size=b)
        embedder.load()
        embedder.embed(texts[: 2 * b])  # warm-up at this batch size
        t0 = time.perf_counter()
        embedder.embed(texts)
        rates[b] = len(texts) / (time.perf_counter() - t0)
    return rates, float(np.mean([len(t) for t in texts]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--cleanvision-worker":
        cleanvision_worker(sys.argv[2], int(sys.argv[3]) or None)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="images (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="dataops runs (best reported)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="dataops threads (and 1)")
    parser.add_argument("--cleanvision-python", help="an interpreter that has cleanvision installed")
    parser.add_argument("--cleanvision-jobs", type=int, default=0, help="its process count (0 = its default)")
    parser.add_argument("--no-cleanvision", action="store_true")
    parser.add_argument("--no-embed", action="store_true", help="skip the text-embedding throughput")
    parser.add_argument("--embed-texts", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    python = None
    if not args.no_cleanvision:
        fallback = Path("/tmp/cvenv/bin/python")
        python = args.cleanvision_python or (str(fallback) if fallback.exists() else None)
        if python is None:
            console.print("[yellow]cleanvision not found: running dataops alone (see the module docstring)[/]")
    console.print(f"machine: {os.cpu_count()} CPUs · load {os.getloadavg()[0]:.1f} · numpy {np.__version__}")
    t0 = time.perf_counter()
    images, labels, dup_truth = make_set(args.n, args.seed)
    console.print(f"generated {len(images)} images in {time.perf_counter() - t0:.1f} s")
    results: dict[str, Any] = {"n": len(images)}
    with tempfile.TemporaryDirectory(prefix="bench_quality_") as tmp:
        paths = write_pngs(images, Path(tmp))
        ours = run_ours(images, paths, args.repeats, args.workers)
        cv = run_cleanvision(python, Path(tmp), args.cleanvision_jobs or None) if python else None
    cv_flags = [set(cv["flags"].get(p.name, [])) for p in paths] if cv else []
    if cv:  # exact duplicates are near duplicates too
        cv_flags = [f | ({DUP} if f & {"exact_duplicates", "near_duplicates"} else set()) for f in cv_flags]

    best = {k: min(v) for k, v in ours["timings"].items()}
    workers = args.workers
    t = Table(title=f"Image quality on {len(images):,} images (PNG, mostly 256x256)", title_justify="left")
    t.add_column("")
    t.add_column("dataops", justify="right")
    t.add_column(f"cleanvision {cv['version']}" if cv else "cleanvision (not run)", justify="right")
    cv_jobs = f"{cv['n_jobs'] or 'default'} jobs" if cv else ""
    t.add_row("seconds, from PNG files, 1 thread", f"{best['files_1']:.2f}", "–")
    if workers != 1:
        t.add_row(f"seconds, from PNG files, {workers} threads", f"{best[f'files_{workers}']:.2f}", "–")
    t.add_row("seconds, from PNG files, its pool", "–", f"{cv['seconds']:.2f} ({cv_jobs})" if cv else "–")
    t.add_row("seconds, decoded arrays, 1 thread", f"{best['in_memory']:.2f}", "–")
    fastest = min(best["files_1"], best[f"files_{workers}"])
    t.add_row(
        "images / s (from files)", f"{len(images) / fastest:,.0f}", f"{len(images) / cv['seconds']:,.0f}" if cv else "–"
    )
    ratio = cv["seconds"] / fastest if cv else None
    ratio_1 = cv["seconds"] / best["files_1"] if cv else None
    t.add_row("speed-up (faster dataops run)", f"{ratio:.1f}x" if ratio else "–", "1x" if cv else "–")
    t.add_row("speed-up (1 thread)", f"{ratio_1:.1f}x" if ratio_1 else "–", "1x" if cv else "–")
    results.update(dataops=ours["timings"], ratio=ratio, ratio_one_thread=ratio_1)
    results["cleanvision"] = {k: cv[k] for k in ("version", "seconds", "n_jobs")} if cv else None
    per_kind: dict[str, Any] = {}
    for kind in (*ISSUES, DUP):
        truth = [i in dup_truth for i in range(len(images))] if kind == DUP else [lab == kind for lab in labels]
        p, r = precision_recall(ours["flags"], truth, kind)
        cv_name = DUP if kind == DUP else CLEANVISION_NAME[kind]
        cvp = precision_recall(cv_flags, truth, cv_name) if cv and cv_name else None
        per_kind[kind] = {"dataops": [p, r], "cleanvision": list(cvp) if cvp else None}
        label = kind if cv_name in (kind, None) else f"{kind} ({cv_name})"
        t.add_row(
            f"{label}: precision / recall",
            f"{p:.2f} / {r:.2f}",
            f"{cvp[0]:.2f} / {cvp[1]:.2f}" if cvp else ("no detector" if cv else "–"),
        )
    clean_idx = [i for i, lab in enumerate(labels) if lab == "clean" and i not in dup_truth]
    ours_fp = sum(bool(ours["flags"][i]) for i in clean_idx) / len(clean_idx)
    cv_fp = (
        sum(bool(cv_flags[i] - {"near_duplicates", "exact_duplicates"}) for i in clean_idx) / len(clean_idx)
        if cv
        else None
    )
    t.add_row("clean images flagged", f"{ours_fp:.1%}", f"{cv_fp:.1%}" if cv_fp is not None else "–")
    console.print(t)
    for name, fl in (("dataops", ours["flags"]), ("cleanvision", cv_flags)):
        extra = Counter(labels[i] for i, f in enumerate(fl) if DUP in f and i not in dup_truth)
        if extra:
            console.print(f"{name}: near-duplicate flags outside the planted pairs, by label: {dict(extra)}")
    results["per_kind"] = per_kind
    if not args.no_embed:
        rates, chars = embed_throughput([32, 128], args.embed_texts)
        te = Table(title=f"MiniLM embeddings, {args.embed_texts} texts of {chars:.0f} chars", title_justify="left")
        te.add_column("batch size", justify="right")
        te.add_column("texts / s", justify="right")
        for b, rate in rates.items():
            te.add_row(str(b), f"{rate:,.0f}")
        console.print(te)
        results["embed_texts_per_s"] = rates
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
