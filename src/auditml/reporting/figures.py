"""Which figures a report draws, from its values (the drawing itself is in
:mod:`auditml.figures.plots`)."""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure

from auditml.figures.plots import (
    LeakagePoint,
    RocSeries,
    accuracy_vs_leakage_figure,
    roc_overlay_figure,
)
from auditml.reporting.rows import (
    ACCURACY_VS_LEAKAGE_PNG,
    ROC_OVERLAY_PNG,
    Comparison,
    ComparisonData,
)
from auditml.reporting.views import RunView


@dataclass(frozen=True)
class NamedFigure:
    """A figure, the file name it gets where a format writes figures to files, and its caption."""

    file_name: str
    caption: str
    figure: Figure


def plot_labels(comparison: Comparison) -> list[str]:
    """Model labels, with the run added (as :attr:`Comparison.run_labels` names it) where two
    runs share a label."""
    labels = [row.label for row in comparison.rows]
    return [
        f"{row.label}, {run}" if labels.count(row.label) > 1 else row.label
        for row, run in zip(comparison.rows, comparison.run_labels, strict=True)
    ]


def comparison_figures(data: ComparisonData) -> list[NamedFigure]:
    comparison = data.comparison
    labels = plot_labels(comparison)
    roc = roc_overlay_figure(
        [
            RocSeries(label, curve.fpr, curve.tpr, row.auc)
            for label, curve, row in zip(labels, data.curves, comparison.rows, strict=True)
        ],
        attack=comparison.attack,
    )
    leakage = accuracy_vs_leakage_figure(
        [
            LeakagePoint(label, row.auc, row.val_acc)
            for label, row in zip(labels, comparison.rows, strict=True)
            # A model audited in Python has no validation accuracy to place it by.
            if row.val_acc is not None
        ],
        attack=comparison.attack,
    )
    return [
        NamedFigure(
            ROC_OVERLAY_PNG,
            "ROC curves of the attack on log-log axes (the dashed diagonal is chance)",
            roc,
        ),
        NamedFigure(
            ACCURACY_VS_LEAKAGE_PNG,
            "Validation accuracy against attack AUC, one point per run",
            leakage,
        ),
    ]


def run_roc_figure(view: RunView) -> NamedFigure | None:
    """Every attack of the run on one log-log ROC plot (None when only the canary audit ran)."""
    if not view.attacks:
        return None
    series = [RocSeries(a.name, a.fpr, a.tpr, a.auc) for a in view.attacks]
    return NamedFigure(
        "roc_overlay.png",
        "ROC curves of every attack on log-log axes (the dashed diagonal is chance, the dotted "
        "line 1% FPR)",
        roc_overlay_figure(series, attack=view.facts.run_name),
    )
