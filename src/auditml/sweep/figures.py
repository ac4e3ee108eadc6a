"""The sweep's three figures, drawn with matplotlib's object API (never ``pyplot``).

ε runs along a log axis; the run without DP (ε = ∞) sits one doubling to the right of the
largest finite ε, on a tick labelled "∞ (no DP)", with a gap marker so it is not read as a value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator, PercentFormatter

from auditml.figures.plots import png_bytes
from auditml.sweep.report import SweepRecord, SweepRow

INFINITY_LABEL = "∞ (no DP)"


FIGURES = ("accuracy_vs_epsilon", "tpr_vs_epsilon", "bound_vs_epsilon")
"""The figures' file stems, in the order :func:`sweep_figures` draws them."""


def claimed_position(rows: Sequence[SweepRow]) -> dict[str, float]:
    """Each run's x position: its accountant's ε, or the labelled ∞ position without DP."""
    finite = [row.epsilon_claimed for row in rows if row.epsilon_claimed is not None]
    infinity = 2 * max(finite) if finite else 1.0
    return {row.run: row.epsilon_claimed if row.epsilon_claimed is not None else infinity
            for row in rows}


def sweep_figures(record: SweepRecord) -> dict[str, bytes]:
    """The PNGs by file stem: accuracy, TPR at 1% FPR and ε lower bound against claimed ε."""
    x = claimed_position(record.rows)
    runs = list(dict.fromkeys(row.run for row in record.rows))
    first = {row.run: row for row in reversed(record.rows)}

    accuracy, axes = _figure("Validation accuracy vs ε", "Validation accuracy")
    points = sorted((x[run], first[run].val_acc) for run in runs)
    axes.plot(*zip(*points, strict=True), marker="o")
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    _epsilon_axis(axes, record.rows, x)

    tpr, axes = _figure("Membership leakage vs ε", "TPR at 1% FPR (higher = more leakage)")
    for attack in record.attacks:
        series = sorted((x[r.run], r.tpr_at_1pct_fpr) for r in record.rows if r.attack == attack)
        axes.plot(*zip(*series, strict=True), marker="o", label=attack)
    axes.axhline(0.01, linestyle="--", color="gray", linewidth=1.0, label="chance (1%)")
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    axes.legend(loc="best", fontsize="small")
    _epsilon_axis(axes, record.rows, x)

    bound, axes = _figure("Audit ε lower bound vs claimed ε", "ε lower bound (audit)")
    finite = sorted({x[r.run] for r in record.rows if r.epsilon_claimed is not None})
    if finite:
        # Sampled densely: y = ε is a curve on the log ε axis, not the segment between points.
        diagonal = np.geomspace(finite[0], finite[-1], 50)
        axes.plot(diagonal, diagonal, linestyle="--", color="gray",
                  label="claimed ε (a bound above it = VIOLATION)")
    for attack in record.attacks:
        series = sorted((x[r.run], r.epsilon_lower_bound) for r in record.rows
                        if r.attack == attack)
        axes.plot(*zip(*series, strict=True), marker="o", label=f"{attack} (95% bound)")
    axes.legend(loc="upper left", fontsize="small")
    _epsilon_axis(axes, record.rows, x)
    return dict(zip(FIGURES, (png_bytes(accuracy), png_bytes(tpr), png_bytes(bound)),
                    strict=True))


def _figure(title: str, ylabel: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(6.0, 4.5))
    figure.subplots_adjust(left=0.14, right=0.96, bottom=0.12, top=0.92)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _epsilon_axis(axes: Axes, rows: Sequence[SweepRow], x: dict[str, float]) -> None:
    axes.set_xscale("log")
    axes.xaxis.set_minor_locator(NullLocator())
    positions = sorted(set(x.values()))
    labels = {x[row.run]: (INFINITY_LABEL if row.epsilon_claimed is None
                           else f"{row.epsilon_claimed:.2g}") for row in rows}
    axes.set_xticks(positions, [labels[p] for p in positions])
    if any(row.epsilon_claimed is None for row in rows) and len(positions) > 1:
        # A break between the last finite ε and ∞: the distance there means nothing.
        gap = math.sqrt(positions[-1] * positions[-2])
        axes.axvline(gap, color="lightgray", linestyle=":", linewidth=1.0)
    axes.set_xlabel("claimed ε (accountant); log scale")
