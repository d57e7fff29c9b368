"""`feedbackguard bench ...`: the measured claims, runnable from an installed package."""

from __future__ import annotations

from pathlib import Path

import click

from feedbackguard.bench import detect as detect_bench
from feedbackguard.bench.report import plots, table
from feedbackguard.simulate import DATASETS, SCENARIOS


@click.group("bench")
def bench_group() -> None:
    """Benchmarks (detection quality and model impact)."""


@bench_group.command("detect")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (and nothing else).")
@click.option("--scenarios", "-s", multiple=True, type=click.Choice(sorted(SCENARIOS)),
              help="Scenarios to run (repeatable); all attacks by default.")  # fmt: skip
@click.option("--dataset", type=click.Choice(DATASETS), default="digits", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="A small honest population (for tests).")
@click.option("--plots-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("docs/img"), show_default=True)  # fmt: skip
@click.option("--no-plots", is_flag=True)
def detect_command(
    as_json: bool, scenarios: tuple[str, ...], dataset: str, seed: int, quick: bool,
    plots_dir: Path, no_plots: bool,
) -> None:  # fmt: skip
    """Every attack scenario through the real pipeline (replay) and the baselines: no
    defence, rate limit only, clean-data oracle, ART ProvenanceDefense, cleanlab."""

    def echo(line: str) -> None:
        if not as_json:
            click.echo(line, err=True)

    report = detect_bench.run(
        scenarios or detect_bench.ATTACK_SCENARIOS,
        dataset,  # type: ignore[arg-type]  # click.Choice(DATASETS)
        seed,
        quick,
        echo=echo,
    )
    written = [] if no_plots else plots(report, plots_dir)
    if as_json:
        click.echo(detect_bench.dumps(report).decode())
        return
    click.echo(table(report))
    for path in written:
        click.echo(f"plot: {path}")
