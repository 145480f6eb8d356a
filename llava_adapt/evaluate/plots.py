"""The run report's PNG figures, drawn with matplotlib's Agg backend (no display, no browser needed).

Both figures are at most `FIGURE_WIDTH_IN` × 100 px wide, so they fit the report's page (and its CSS scales them
down on a narrower window), with the legend inside the figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

FIGURE_WIDTH_IN = 9.6  # at 100 dpi: 960 px, inside the report's 1100 px column
_BAR_IN = 0.16  # height of one bar of the metrics chart


def plot_training(histories: Mapping[str, Sequence[Mapping[str, Any]]], stage: str, path: Path) -> bool:
    """Draw a stage's training loss and learning rate against the optimizer step, side by side.

    Args:
        histories (`Mapping[str, Sequence[Mapping]]`): the trainer's `state.log_history` of each training the stage
            ran, by the label its curves get (e.g. the trained model and the stage-2-only ablation of `instruct`);
            entries with `step`, `loss`, `learning_rate`, the final summary entry has neither and is ignored.
        stage (`str`): the stage's name, for the titles.
        path (`Path`): the PNG to write.

    Returns:
        `False` (and nothing written) when no history has a loss entry.
    """
    logged = {label: [e for e in history if "loss" in e and "step" in e] for label, history in histories.items()}
    logged = {label: entries for label, entries in logged.items() if entries}
    if not logged:
        return False
    fig, (loss_ax, lr_ax) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH_IN, 3.4), dpi=100, layout="constrained")
    for n, (label, entries) in enumerate(logged.items()):
        style = {"marker": "o", "markersize": 3, "label": label, "linestyle": "-" if n == 0 else "--"}
        steps = [e["step"] for e in entries]
        loss_ax.plot(steps, [e["loss"] for e in entries], **style)
        rates = [(e["step"], e["learning_rate"]) for e in entries if "learning_rate" in e]
        if rates:
            lr_ax.plot(*zip(*rates, strict=True), **style)
    loss_ax.set(title=f"{stage}: training loss", xlabel="step", ylabel="loss")
    lr_ax.set(title=f"{stage}: learning rate", xlabel="step", ylabel="learning rate")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    for ax in (loss_ax, lr_ax):
        ax.grid(alpha=0.3)
        if len(logged) > 1:
            ax.legend(fontsize="small")
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_metrics(
    columns: Mapping[str, Mapping[str, float]],
    benchmark: str,
    path: Path,
    references: Mapping[str, Mapping[str, float]] | None = None,
    label: Callable[[str, float], str] = lambda _, value: f"{value:.3g}",
    xlabel: str = "score",
) -> bool:
    """Draw a benchmark's scores as horizontal grouped bars: one group per metric, one bar per model.

    Every bar carries its value as text, so a score of 0 is visible (as a `0` and a tick on the axis), and a model
    that has no value for a metric gets no bar. A reference level of a metric (e.g. chance) is a dashed line across
    its group, named.

    Args:
        columns (`Mapping[str, Mapping[str, float]]`): scores by model (e.g. baseline, trained), then by metric,
            in the order to draw them (only scores: counts and diagnostics are not drawn).
        benchmark (`str`): the benchmark's name, for the title.
        path (`Path`): the PNG to write.
        references (`Mapping[str, Mapping[str, float]]`, *optional*): reference levels by the metric they belong to,
            then by name (e.g. `{"accuracy": {"chance": 0.31}}`); those of metrics not drawn are ignored.
        label (`Callable[[str, float], str]`, defaults to 3 significant digits): the text of a bar, from the
            metric's name and value.
        xlabel (`str`, defaults to `"score"`): the value axis's title (e.g. `"score (%)"`). The axis runs from 0 to 1,
            or to 100 when a value is above 1 (percentages), or to the largest value beyond that.

    Returns:
        `False` (and nothing written) when there is no score to draw.
    """
    metrics = list(dict.fromkeys(m for scores in columns.values() for m in scores))
    if not metrics:
        return False
    models = list(columns)
    group = len(models) + 0.6  # bars per metric plus a gap
    height = max(2.0, _BAR_IN * group * len(metrics) + 1.2)
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, height), dpi=100, layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    largest = 0.0
    for j, model in enumerate(models):
        rows = [(i, columns[model][m]) for i, m in enumerate(metrics) if m in columns[model]]
        if not rows:
            continue
        colour = colours[j % len(colours)]
        ys = [-(i * group + j) for i, _ in rows]
        values = [v for _, v in rows]
        largest = max(largest, *values)
        bars = ax.barh(ys, values, height=0.85, color=colour, label=model)
        ax.bar_label(bars, [label(metrics[i], v) for i, v in rows], padding=3, fontsize=7)
        zeros = [y for y, v in zip(ys, values, strict=True) if v == 0]
        if zeros:  # a zero-length bar draws nothing: mark its place
            ax.plot([0] * len(zeros), zeros, marker="|", markersize=9, markeredgewidth=2, color=colour,
                    linestyle="none")  # fmt: skip
    for i, metric in enumerate(metrics):
        for name, value in (references or {}).get(metric, {}).items():
            top, bottom = -(i * group) + 0.5, -(i * group + len(models) - 1) - 0.5
            ax.vlines(value, bottom, top, colors="black", linestyles="dashed", linewidth=1.2)
            ax.annotate(f"{name} {label(name, value)}", (value, top), xytext=(3, -1), textcoords="offset points",
                        fontsize=7, va="top")  # fmt: skip
            largest = max(largest, value)
    ax.set_yticks([-(i * group + (len(models) - 1) / 2) for i in range(len(metrics))], metrics, fontsize=9)
    ax.set_xlim(0, (1.0 if largest <= 1.0 else 100.0 if largest <= 100.0 else largest) * 1.12)  # room for labels
    ax.set_ylim(-((len(metrics) - 1) * group + len(models) - 1) - 0.7, 0.7)
    ax.set(xlabel=xlabel)
    fig.suptitle(benchmark)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.04), ncols=min(len(models), 4),
              frameon=False)  # fmt: skip
    fig.savefig(path)
    plt.close(fig)
    return True
