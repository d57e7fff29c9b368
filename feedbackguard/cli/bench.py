"""`feedbackguard bench ...`: the measured claims, runnable from an installed package."""

from __future__ import annotations

from pathlib import Path

import click

from feedbackguard.bench import detect as detect_bench
from feedbackguard.bench.report import markdown, plots, table
from feedbackguard.simulate import CROWDS, DATASETS, FAMILIES
from feedbackguard.simulate.sweeps import RANDOM_POINTS


@click.group("bench")
def bench_group() -> None:
    """Benchmarks (detection quality and model impact)."""


@bench_group.command("detect")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (and nothing else).")
@click.option("--family", "--scenarios", "-s", "families", multiple=True,
              type=click.Choice(FAMILIES),
              help="Attack families to sweep (repeatable); all by default.")  # fmt: skip
@click.option("--crowd", "crowds", multiple=True, type=click.Choice(CROWDS),
              help="Honest crowd traps to run (repeatable); all by default.")  # fmt: skip
@click.option("--no-crowds", is_flag=True, help="Run no crowd trap.")
@click.option("--sweep-points", type=click.IntRange(min=0), default=RANDOM_POINTS,
              show_default=True, help="Random interior points per family (besides the "
              "default, the corners and the known attacks).")  # fmt: skip
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Runs at once, each with its own Redis [default: one per core].")  # fmt: skip
@click.option("--dataset", type=click.Choice(DATASETS), default="digits", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True,
              help="A small population and three points per family (for tests).")  # fmt: skip
@click.option("--plots-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("docs/img"), show_default=True)  # fmt: skip
@click.option("--no-plots", is_flag=True)
@click.option("--markdown", "as_markdown", is_flag=True,
              help="Print the sweep tables as Markdown (docs/benchmarks.md).")  # fmt: skip
def detect_command(
    as_json: bool, families: tuple[str, ...], crowds: tuple[str, ...], no_crowds: bool,
    sweep_points: int, jobs: int | None, dataset: str, seed: int, quick: bool,
    plots_dir: Path, no_plots: bool, as_markdown: bool,
) -> None:  # fmt: skip
    """Every attack family over a sweep of its parameters, and every honest crowd
    trap, through the real pipeline (replay) and the baselines (no defence, rate limit
    only; at each family's default point also the clean-data oracle, ART
    ProvenanceDefense and cleanlab); the worst case per family."""

    def echo(line: str) -> None:
        if not as_json:
            click.echo(line, err=True)

    report = detect_bench.run(
        families or FAMILIES,
        dataset,  # type: ignore[arg-type]  # click.Choice(DATASETS)
        seed,
        quick,
        echo=echo,
        crowds=() if no_crowds else crowds or CROWDS,
        random_points=sweep_points,
        jobs=jobs,
    )
    written = [] if no_plots else plots(report, plots_dir)
    if as_json:
        click.echo(detect_bench.dumps(report).decode())
        return
    click.echo(markdown(report) if as_markdown else table(report))
    for path in written:
        click.echo(f"plot: {path}")
