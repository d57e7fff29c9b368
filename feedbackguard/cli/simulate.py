"""`feedbackguard simulate`: a seeded honest + attack stream as a replay file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
import pydantic

from feedbackguard.cli.options import namespace_option
from feedbackguard.simulate import DATASETS, QUICK, SCENARIOS, generate, truth_path, write


@click.command("simulate")
@click.option("--scenario", type=click.Choice(sorted(SCENARIOS)), required=True)
@click.option("--dataset", type=click.Choice(DATASETS), default="digits", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The replay file (JSONL); FILE.truth.jsonl and FILE.meta.json go beside it.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@namespace_option
@click.option("--quick", is_flag=True, help="A small honest population (one day, 2,000 events).")
def simulate_command(
    scenario: str, dataset: str, out: Path, seed: int, namespace: str, quick: bool
) -> None:
    """Generate honest traffic plus one attack scenario on a scikit-learn data set,
    with ground truth, ready for `feedbackguard replay`."""
    if not out.parent.is_dir():
        raise click.BadParameter(f"directory {out.parent} does not exist", param_hint="--out")
    try:
        sim = generate(
            scenario,
            dataset,  # type: ignore[arg-type]  # click.Choice(DATASETS)
            seed,
            honest=QUICK if quick else None,
            namespace=namespace,
        )
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        raise click.BadParameter(first["msg"], param_hint="--namespace") from exc
    try:
        write(sim, out)
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from exc
    counts = Counter(t.population for t in sim.truth.values())
    poison = sum(t.is_poison for t in sim.truth.values())
    click.echo(
        f"{len(sim.events)} events ({poison} poison; "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + f") -> {out}, truth -> {truth_path(out)}"
    )
