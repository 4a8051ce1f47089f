"""``dataops annotate simulate``: the active-learning simulation on a bundled
data set, as a table, JSON, and a learning-curve plot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli._common import console, print_json, table
from app.errors import InputError
from pipelines.annotation._simulate import DATASETS, Comparison, CurvePoint, compare, labels_to_reach
from pipelines.annotation._strategies import STRATEGIES, Strategy

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)


def simulate_cmd(
    dataset: Annotated[str, typer.Option(help=f"Bundled data set: {', '.join(DATASETS)}.")] = "digits",
    budget: Annotated[int, typer.Option(help="Samples to buy (each goes to every annotator).")] = 500,
    strategy: Annotated[str, typer.Option(help=f"Which samples to buy: {' | '.join(STRATEGIES)}.")] = "uncertainty",
    compare_all: Annotated[bool, typer.Option("--compare", help="Run all four strategies and compare them.")] = False,
    annotators: Annotated[int, typer.Option(help="Annotators per sample.")] = 3,
    annotator_accuracy: Annotated[float, typer.Option(help="Chance a simulated annotator answers right.")] = 0.85,
    batch_size: Annotated[int, typer.Option(help="Samples bought per round (the model retrains after each).")] = 20,
    seed: Annotated[int, typer.Option(help="First seed.")] = 0,
    seeds: Annotated[int, typer.Option(help="Runs per strategy (seeds seed, seed+1, ...); curves are averaged.")] = 1,
    cost_per_label: Annotated[float, typer.Option(help="Price of one answer.")] = 1.0,
    plot: Annotated[Path | None, typer.Option(help="Write the learning curve(s) to this PNG.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Simulate active learning with noisy annotators: labels bought vs model accuracy."""
    if dataset not in DATASETS:
        raise InputError(f"unknown dataset {dataset!r}; available: {', '.join(DATASETS)}")
    if budget < 1:
        raise InputError(f"--budget must be at least 1, got {budget}")
    if seeds < 1:
        raise InputError(f"--seeds must be at least 1, got {seeds}")
    if not compare_all and strategy not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    strategies = list(STRATEGIES) if compare_all else [cast(Strategy, strategy)]
    options: dict[str, Any] = {
        "dataset": dataset,
        "budget": budget,
        "annotators": annotators,
        "annotator_accuracy": annotator_accuracy,
        "batch_size": batch_size,
        "cost_per_label": cost_per_label,
    }
    run_seeds = list(range(seed, seed + seeds))
    if json_out:
        result = compare(strategies, seeds=run_seeds, **options)
    else:
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("buying labels", total=budget * len(strategies) * len(run_seeds))
            result = compare(
                strategies, seeds=run_seeds, progress=lambda done, _total: bar.update(task, completed=done), **options
            )
    if plot is not None:
        write_plot(result, plot)
    if json_out:
        if len(result.reports) == 1:
            print_json(result.reports[0].model_dump())
        else:
            print_json(result.model_dump())
        return
    show(result, plot)


def show(result: Comparison, plot: Path | None) -> None:
    first = result.reports[0]
    title = (
        f"Active learning on {first.dataset}: {first.annotators} annotators at "
        f"{first.annotator_accuracy:.0%}, batches of {first.batch_size}, seeds {_seeds(result.seeds)}"
    )
    rows = []
    for strategy in result.curves:
        runs = [r for r in result.reports if r.strategy == strategy]
        rows.append(
            (
                strategy,
                runs[0].labels_bought,
                _mean([r.model_accuracy for r in runs], "{:.3f}"),
                _mean([r.consensus_accuracy for r in runs], "{:.3f}"),
                _mean([r.fleiss_kappa for r in runs], "{:.3f}"),
                _mean([r.krippendorff_alpha for r in runs], "{:.3f}"),
                _mean([float(r.tie_breaks) for r in runs], "{:.1f}"),
                _mean([r.cost for r in runs], "{:.1f}"),
                _mean([r.seconds for r in runs], "{:.1f}"),
            )
        )
    cols = ["strategy", "bought", "model", "consensus", "κ", "α", "ties", "cost", "s"]
    console.print(table(title, cols, rows))
    console.print(
        "model: test accuracy; consensus: share of consensus labels that are right; "
        "κ: Fleiss' kappa; α: Krippendorff's alpha; ties: extra answers bought to break ties; s: seconds per run",
        style="dim",
    )
    if result.savings:
        base = result.savings[result.baseline]
        saving_rows = [
            (s, v.labels if v.labels is not None else "never", f"{v.ratio:.1f}x" if v.ratio else "-")
            for s, v in result.savings.items()
        ]
        console.print(f"\nSamples each strategy needed to reach {result.baseline}'s final accuracy ({base.target_accuracy:.3f}):")
        console.print(table("Label savings", ["strategy", "samples", f"fewer than {result.baseline}"], saving_rows))
    else:
        curve = next(iter(result.curves.values()))
        console.print(table("Learning curve", ["samples", "accuracy", "cost"], _sampled(curve)))
        for level in (0.9, 0.95):
            reached = labels_to_reach(curve, level)
            console.print(f"accuracy {level:.2f}: " + (f"after {reached} samples" if reached else "not reached"))
    if plot is not None:
        console.print(f"learning curve written to {plot}")


def write_plot(result: Comparison, path: Path) -> None:
    """The (mean) learning curve of each strategy, with the baseline's final accuracy dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    ax = fig.add_subplot()
    for strategy, curve in result.curves.items():
        ax.plot([p.labels for p in curve], [p.accuracy for p in curve], marker=".", label=strategy)
    if result.baseline in result.curves and len(result.curves) > 1:
        final = result.curves[result.baseline][-1].accuracy
        ax.axhline(final, linestyle="--", color="gray", linewidth=1, label=f"{result.baseline} final ({final:.3f})")
    first = result.reports[0]
    ax.set_xlabel("samples bought")
    ax.set_ylabel("test accuracy")
    ax.set_title(
        f"{first.dataset}: {first.annotators} annotators at {first.annotator_accuracy:.0%}, "
        f"mean of {len(result.seeds)} seed(s)"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    try:
        fig.savefig(path)
    except (OSError, ValueError) as exc:  # ValueError: a suffix matplotlib cannot write
        raise InputError(f"cannot write the plot to {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def _sampled(curve: list[CurvePoint], rows: int = 12) -> list[tuple[int, str, str]]:
    step = max(1, -(-len(curve) // rows))
    picked = curve[::step] if curve[-1] in curve[::step] else [*curve[::step], curve[-1]]
    return [(p.labels, f"{p.accuracy:.3f}", f"{p.cost:.1f}") for p in picked]


def _mean(values: list[float | None], fmt: str) -> str:
    present = [v for v in values if v is not None]
    return fmt.format(sum(present) / len(present)) if present else "-"


def _seeds(seeds: list[int]) -> str:
    return str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
