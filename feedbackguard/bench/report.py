"""The bench report as a terminal table and PNG plots (matplotlib, when installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedbackguard.bench.detect import DEFENCES

METRICS = ("poison_admitted", "honest_admitted", "honest_review", "honest_correct_admitted",
           "honest_correct_review", "clean_acc", "attack_success")  # fmt: skip
SHORT = {"poison_admitted": "poison adm", "honest_admitted": "honest adm",
         "honest_review": "honest rev", "honest_correct_admitted": "right adm",
         "honest_correct_review": "right rev", "clean_acc": "clean acc",
         "attack_success": "attack succ"}  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value * 100:.1f}%"
    return str(value)


def table(report: dict[str, Any]) -> str:
    """One block per scenario: a row per defence, a column per measure."""
    lines: list[str] = []
    head = f"{'defence':<14}" + "".join(f"{SHORT[m]:>12}" for m in METRICS) + f"{'seconds':>9}"
    for name, result in report["scenarios"].items():
        fg = result.get("feedbackguard", {})
        ttd = fg.get("time_to_detection_s")
        lines.append(f"\n{name} ({result['events']} events, {result['poison']} poison"
                     + (f", detected after {ttd:.0f} s of event time" if ttd is not None else "")
                     + ")")  # fmt: skip
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
    """detect_poison.png, detect_attack.png, detect_accuracy.png: grouped bars per
    scenario and defence. Returns the files written ([] without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    scenarios = list(report["scenarios"])
    written: list[Path] = []
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
