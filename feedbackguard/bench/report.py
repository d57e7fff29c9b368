"""The bench report as terminal tables and PNG plots (matplotlib, when installed):
the worst case per family over its sweep, the crowd traps, and the per-scenario
figures of each family's default point."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from feedbackguard.bench.detect import BASELINES, DEFENCES, WORST

METRICS = ("poison_admitted", "honest_admitted", "honest_review", "honest_correct_admitted",
           "honest_correct_review", "clean_acc", "attack_success")  # fmt: skip
SHORT = {"poison_admitted": "poison adm", "honest_admitted": "honest adm",
         "honest_review": "honest rev", "honest_correct_admitted": "right adm",
         "honest_correct_review": "right rev", "clean_acc": "clean acc",
         "attack_success": "attack succ"}  # fmt: skip


# Figures that are not shares of events: review load per 10,000 events, a rank, a yes/no.
PER_10K = frozenset({"review_cases", "review_actions"})
PLAIN = frozenset({"benign_taken_down", "first_honest_case_rank"})


def _text(metric: str, value: Any, percent: str = "%") -> str:
    """A figure as text: a share in percent, a count per 10,000 events, a rank, yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if metric in PER_10K:
        return f"{value:.1f}"
    if metric in PLAIN or not isinstance(value, float):
        return str(value)
    return f"{value * 100:.1f}{percent}"


def _cell(value: Any, metric: str = "") -> str:
    return "-" if value is None else _text(metric, value)


def sweep_table(report: dict[str, Any]) -> str:
    """The worst case per family (feedbackguard, then the baselines' worst), the point
    that gave feedbackguard's worst, the crowd traps and the honest figures' worst."""
    width = {m: max(24, len(m) + 2) for m in WORST}
    lines = [f"{'family':<13}{'defence':<14}" + "".join(f"{m:>{width[m]}}" for m in WORST)]
    for name, family in report["families"].items():
        rows = [("feedbackguard", family["worst"])]
        rows += [(d, family["baselines"][d]) for d in BASELINES]
        for defence, worst in rows:
            cells = "".join(f"{_cell(worst[m], m):>{width[m]}}" for m in WORST)
            lines.append(f"{name:<13}{defence:<14}{cells}")
        for metric, key in family["worst_point"].items():
            if key is not None:
                lines.append(f"{'':<13}worst {metric} at {key}")
    lines.append("\ncrowd trap        honest correct admitted")
    for name, value in report["crowds"].items():
        lines.append(f"{name:<18}{_cell(value):>10}")
    lines.append("")
    for metric, key in report["worst_at"].items():
        lines.append(f"{metric} (worst over every run): {_cell(report[metric], metric)} at {key}")
    return "\n".join(lines)


def table(report: dict[str, Any]) -> str:
    """The sweep table, then one block per family's default point: a row per defence,
    a column per measure."""
    lines: list[str] = [sweep_table(report)]
    head = f"{'defence':<14}" + "".join(f"{SHORT[m]:>12}" for m in METRICS) + f"{'seconds':>9}"
    for name, result in report["scenarios"].items():
        fg = result.get("feedbackguard", {})
        ttd = fg.get("time_to_detection_s")
        lines.append(f"\n{name} ({result['events']} events, {result['poison']} poison"
                     + (f", detected after {ttd:.0f} s of event time" if ttd is not None else "")
                     + ")")  # fmt: skip
        if "review_actions" in fg:
            lines.append(
                f"review queue: {fg['review_cases']:.1f} cases opened and "
                f"{fg['review_actions']:.1f} actions to clear it per 10,000 events; first "
                f"honest case at rank {fg['first_honest_case_rank'] or '-'}; all waiting "
                f"poison above it: {_text('', fg['poison_cases_above_honest'])}"
            )
        lines.append(head)
        for defence in DEFENCES:
            run = result.get(defence)
            if run is None:
                continue
            if "skipped" in run:
                lines.append(f"{defence:<14}skipped: {run['skipped']}")
                continue
            cells = "".join(f"{_cell(run.get(m)):>12}" for m in METRICS)
            lines.append(f"{defence:<14}{cells}{run['seconds']:>9.1f}")
    lines.append(
        f"\nchecks: {', '.join(report['checks'])}; analysers: {', '.join(report['analysers'])}; "
        f"{report['seconds']:.0f} s in all"
    )
    return "\n".join(lines)


def plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """detect_worst.png (worst case per family over its sweep, feedbackguard against
    the baselines' worst), detect_crowds.png (each crowd trap) and, per default point,
    detect_poison.png, detect_attack.png, detect_accuracy.png, detect_honest.png.
    Returns the files written ([] without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_worst_plot(report, out_dir, plt), _crowds_plot(report, out_dir, plt)]
    scenarios = list(report["scenarios"])
    for metric, title, file in (
        ("poison_admitted", "Poison admitted (lower is better)", "detect_poison.png"),
        ("attack_success", "Attack success on the retrained model", "detect_attack.png"),
        ("clean_acc", "Clean accuracy of the retrained model", "detect_accuracy.png"),
        ("honest_admitted", "Honest feedback admitted (higher is better)", "detect_honest.png"),
    ):
        fig, ax = plt.subplots(figsize=(11, 4.2))
        width = 0.8 / len(DEFENCES)
        for k, defence in enumerate(DEFENCES):
            values = []
            for s in scenarios:
                run = report["scenarios"][s].get(defence) or {}
                value = run.get(metric)
                values.append(float(value) * 100 if isinstance(value, int | float) else 0.0)
            xs = [i + (k - (len(DEFENCES) - 1) / 2) * width for i in range(len(scenarios))]
            ax.bar(xs, values, width, label=defence)
        ax.set_xticks(range(len(scenarios)))
        ax.set_xticklabels(scenarios)
        ax.set_ylabel("%")
        if metric == "clean_acc":
            low = min(
                (float(r[metric]) * 100 for s in scenarios for d in DEFENCES
                 if isinstance((r := report["scenarios"][s].get(d) or {}).get(metric), float)),
                default=0.0,
            )  # fmt: skip
            ax.set_ylim(max(0.0, low - 5), 100)
        ax.set_title(f"{title} - {report['dataset']}, bench detect")
        ax.legend(ncol=len(DEFENCES), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1))
        fig.tight_layout()
        path = out_dir / file
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


WORST_PANELS = (
    ("poison_admitted", "poison admitted (goal <= 1 %)", 1.0),
    ("attack_success", "attack success (goal <= 2 %)", 2.0),
    ("honest_correct_admitted", "honest correct admitted (goal >= 99.5 %)", 99.5),
    ("review_share", "review share of events (goal <= 1 %)", 1.0),
)


def _worst_plot(report: dict[str, Any], out_dir: Path, plt: Any) -> Path:
    families = list(report["families"])
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    defences = ("feedbackguard", *BASELINES)
    width = 0.8 / len(defences)
    for ax, (metric, title, goal) in zip(axes.flat, WORST_PANELS, strict=True):
        for k, defence in enumerate(defences):
            values = []
            for name in families:
                family = report["families"][name]
                worst = family["worst"] if defence == "feedbackguard" else \
                    family["baselines"][defence]  # fmt: skip
                value = worst.get(metric)
                values.append(float(value) * 100 if isinstance(value, int | float) else 0.0)
            xs = [i + (k - (len(defences) - 1) / 2) * width for i in range(len(families))]
            ax.bar(xs, values, width, label=defence)
        ax.axhline(goal, color="black", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(families)))
        ax.set_xticklabels(families, rotation=20, fontsize=8)
        ax.set_ylabel("%")
        ax.set_title(f"worst {title}", fontsize=10)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"bench detect: worst case per family over its sweep - {report['dataset']}")
    fig.tight_layout()
    path = out_dir / "detect_worst.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _crowds_plot(report: dict[str, Any], out_dir: Path, plt: Any) -> Path:
    names = [*report["crowds"], "power users (worst)", "model fixes (worst)"]
    values = [*report["crowds"].values(), report.get("power_users_correct_admitted"),
              report.get("model_fix_admitted")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(10, 3.8))
    ax.bar(names, [float(v) * 100 if isinstance(v, int | float) else 0.0 for v in values])
    ax.axhline(98.0, color="black", linestyle="--", linewidth=0.8, label="goal 98 %")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of correct feedback admitted")
    ax.set_title(f"Honest crowds: correct feedback admitted - {report['dataset']}, bench detect")
    ax.tick_params(axis="x", labelsize=8, rotation=15)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "detect_crowds.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# The detection goals (docs/benchmarks.md marks the figures that miss theirs in bold).
GOALS: dict[str, Callable[[float], bool]] = {
    "poison_admitted": lambda v: v <= 0.01,
    "attack_success": lambda v: v <= 0.02,
    "benign_taken_down": lambda v: v == 0,
    "honest_correct_admitted": lambda v: v >= 0.995,
    "review_share": lambda v: v <= 0.01,
    "review_actions": lambda v: v <= 10,
    "poison_cases_above_honest": lambda v: bool(v),
    "crowd": lambda v: v >= 0.98,
    "power_users_correct_admitted": lambda v: v >= 0.98,
    "model_fix_admitted": lambda v: v >= 0.99,
}


def _md(metric: str, value: Any, judged: bool = True) -> str:
    """A figure for Markdown, in bold when it misses its goal (figures without one, such
    as `review_cases`, never are)."""
    if value is None:
        return "-"
    text = _text(metric, value, " %")
    goal = GOALS.get(metric)
    return f"**{text}**" if judged and goal is not None and not goal(value) else text


def markdown(report: dict[str, Any]) -> str:
    """The sweep table, the crowd table and the honest figures' worst as Markdown for
    docs/benchmarks.md."""
    lines = ["| family | runs | defence | " + " | ".join(WORST) + " |",
             "|" + "---|" * (3 + len(WORST))]  # fmt: skip
    for name, family in report["families"].items():
        rows = [("**feedbackguard**", family["worst"], True)]
        rows += [(d, family["baselines"][d], False) for d in BASELINES]
        for defence, worst, judged in rows:
            cells = " | ".join(_md(m, worst[m], judged) for m in WORST)
            lines.append(f"| {name} | {len(family['points'])} | {defence} | {cells} |")
    lines += ["", "Point that gave feedbackguard's worst:", ""]
    lines += ["| family | " + " | ".join(WORST) + " |", "|" + "---|" * (1 + len(WORST))]
    for name, family in report["families"].items():
        where = [str(family["worst_point"][m] or "-").split("/", 1)[-1] for m in WORST]
        lines.append(f"| {name} | " + " | ".join(where) + " |")
    lines += ["", "| crowd trap | honest correct feedback admitted (goal >= 98 %) |", "|---|---|"]
    lines += [f"| {name} | {_md('crowd', v)} |" for name, v in report["crowds"].items()]
    lines += ["", "| worst over every run | figure | run |", "|---|---|---|"]
    for metric, key in report["worst_at"].items():
        lines.append(f"| {metric} | {_md(metric, report[metric])} | {key} |")
    return "\n".join(lines)
