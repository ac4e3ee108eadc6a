"""The comparison report's figures, drawn with matplotlib's object API (never ``pyplot``).

Figures are built as :class:`matplotlib.figure.Figure` and rendered by the Agg canvas, so nothing
touches pyplot's global figure list or the user's backend; a figure is garbage once dropped.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from auditml.figure_data import RocSeries
from auditml.formatting import format_fpr_target

# Log axes cannot show 0, and every ROC curve starts at (0, 0): rates below the axes' lower end
# are drawn on it. That end is never below 1e-5, far below the smallest non-zero rate an audit
# of a few thousand examples can measure.
LOG_FLOOR = 1e-5
# Gallery geometry, in inches: one tile per image, a band for the title.
_TILE_WIDTH, _TILE_HEIGHT, _TITLE_BAND = 1.3, 1.5, 0.4


RATE_TICKS = FuncFormatter(lambda value, _: format_fpr_target(value))
"""Tick labels of a rate axis in percent with the digits they need (log axes included)."""


@dataclass(frozen=True)
class LeakagePoint:
    """One run on the accuracy-vs-leakage plot."""

    label: str
    auc: float
    val_acc: float


def roc_overlay_figure(
    series: Sequence[RocSeries], *, attack: str, floor: float = LOG_FLOOR
) -> Figure:
    """Every run's ROC curve on log-log axes, with the chance diagonal and the 1% FPR line.

    The axes start one decade below the smallest non-zero rate (never below ``floor``): the
    audit cannot resolve smaller rates, and zeros, which log axes cannot show, are drawn there.

    Log-log axes show the low-FPR regime, where an attack that confidently identifies a few
    members is visible even when its AUC is close to 0.5 (Carlini et al., 2022).
    """
    if not 0 < floor < 1:
        raise ValueError(f"`floor` must be in (0, 1), got {floor}")
    low = _log_axis_low(series, floor)
    # Fixed margins, not constrained layout: rendering takes ~40 % less (measured in one
    # process), and every audit draws this figure at least twice.
    figure = Figure(figsize=(6.0, 5.5))
    figure.subplots_adjust(left=0.13, right=0.96, bottom=0.1, top=0.94)
    axes = figure.add_subplot()
    for one in series:
        axes.plot(
            np.clip(one.fpr, low, 1.0),
            np.clip(one.tpr, low, 1.0),
            linewidth=1.6,
            label=f"{one.label} (AUC {one.auc:.3f})",
        )
    axes.plot([low, 1.0], [low, 1.0], linestyle="--", color="gray", label="chance")
    axes.axvline(0.01, linestyle=":", color="lightgray", linewidth=1.0)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(low, 1.0)
    axes.set_ylim(low, 1.0)
    # Rates in percent, as every table and the terminal write them (0.1%, 1%, 100%).
    axes.xaxis.set_major_formatter(RATE_TICKS)
    axes.yaxis.set_major_formatter(RATE_TICKS)
    axes.set_xlabel("False positive rate")
    axes.set_ylabel("True positive rate")
    axes.set_title(f"{attack}: ROC curves (log-log)")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    return figure


def accuracy_vs_leakage_figure(points: Sequence[LeakagePoint], *, attack: str) -> Figure:
    """Validation accuracy against attack AUC, one annotated point per run; 0.5 AUC is chance."""
    figure = Figure(figsize=(6.0, 4.5), layout="constrained")
    axes = figure.add_subplot()
    aucs = [point.auc for point in points]
    accuracies = [point.val_acc for point in points]
    axes.scatter(aucs, accuracies, s=40, zorder=3)
    x_low, x_high = _padded_range([*aucs, 0.5], minimum_pad=0.02)
    for point in points:
        # Labels of points in the right half go to their left, so they stay inside the axes.
        left = point.auc > (x_low + x_high) / 2
        axes.annotate(
            point.label,
            (point.auc, point.val_acc),
            xytext=(-6 if left else 6, 6),
            textcoords="offset points",
            horizontalalignment="right" if left else "left",
            fontsize="small",
        )
    axes.axvline(0.5, linestyle="--", color="gray", linewidth=1.0, label="chance (AUC 0.5)")
    axes.set_xlim(x_low, x_high)
    axes.set_ylim(*_padded_range(accuracies, minimum_pad=0.01))
    axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    axes.set_xlabel(f"Membership-inference AUC ({attack}); higher = more leakage")
    axes.set_ylabel("Validation accuracy")
    axes.set_title("Accuracy vs. privacy leakage")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return figure


def gallery_figure(images: np.ndarray, captions: Sequence[str], *, title: str) -> Figure:
    """A grid of images ``(N, C, H, W)`` with a caption above each (grey when C is 1).

    Each image is rescaled to [0, 1] on its own, so normalised inputs display as they look.
    The tiles are placed on a fixed grid rather than by a layout engine: constrained layout over
    16 panels took 3.5× as long to render (measured in one process), most of an audit's figures.
    """
    count = len(images)
    columns = min(8, max(count, 1))
    rows = (count + columns - 1) // columns
    height_inches = _TILE_HEIGHT * rows + _TITLE_BAND
    figure = Figure(figsize=(_TILE_WIDTH * columns, height_inches))
    band = _TITLE_BAND / height_inches  # the title's share of the figure's height
    figure.suptitle(title, fontsize="small", y=1 - 0.4 * band)
    row_height = (1 - band) / rows
    for position, (image, caption) in enumerate(zip(images, captions, strict=True)):
        row, column = divmod(position, columns)
        left, width = (column + 0.1) / columns, 0.8 / columns
        bottom, height = 1 - band - (row + 0.95) * row_height, 0.72 * row_height
        axes = figure.add_axes((left, bottom, width, height))
        pixels = np.moveaxis(np.asarray(image, dtype=np.float64), 0, -1)
        low, high = pixels.min(), pixels.max()
        pixels = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
        if pixels.shape[-1] == 1:
            axes.imshow(pixels[..., 0], cmap="gray", interpolation="nearest")
        else:
            axes.imshow(pixels, interpolation="nearest")
        axes.set_axis_off()
        figure.text(left + width / 2, bottom + height + 0.02 * row_height, caption,
                    ha="center", va="bottom", fontsize="x-small")
    return figure


def png_bytes(figure: Figure, *, dpi: int = 120) -> bytes:
    """Render ``figure`` to PNG with the Agg canvas (no pyplot, no backend switch)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    # No "Software" entry: the same figure gives the same bytes on every matplotlib version.
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def svg_element(figure: Figure, *, prefix: str, description: str) -> str:
    """``figure`` as an inline ``<svg>`` element for an HTML page.

    Text is drawn as paths, so the page needs no font; the root's fixed width and height are
    dropped, so CSS scales the figure to its column while the viewBox keeps its shape; every id
    gets ``prefix``, so several figures in one page never share one. Ids are hashed with a fixed
    salt: the same figure gives the same text.
    """
    FigureCanvasSVG(figure)
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "path", "svg.hashsalt": "auditml"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    # From the root on: no XML prolog or DOCTYPE, and no RDF metadata (it names no content).
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)
    # matplotlib repeats each text in a comment (escaped, so it cannot close one early).
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    root_end = svg.index(">")
    root = re.sub(r'\s(width|height)="[^"]*"', "", svg[:root_end])
    svg = f'{root} role="img" aria-label="{escape(description)}"{svg[root_end:]}'
    svg = re.sub(r'\bid="', f'id="{prefix}-', svg)
    return re.sub(r"(href=\"#|url\(#)", rf"\g<1>{prefix}-", svg)


def _log_axis_low(series: Sequence[RocSeries], floor: float) -> float:
    rates = np.concatenate([np.ravel(a) for one in series for a in (one.fpr, one.tpr)] or [[]])
    positive = rates[rates > 0]
    if positive.size == 0:
        return floor
    # Strictly below the smallest rate, so a curve's first step stays visible.
    return max(floor, 10.0 ** (np.ceil(np.log10(positive.min())) - 1))


def _padded_range(values: Sequence[float], *, minimum_pad: float) -> tuple[float, float]:
    finite = [value for value in values if np.isfinite(value)] or [0.0, 1.0]
    low, high = min(finite), max(finite)
    pad = max(minimum_pad, 0.1 * (high - low))
    return low - pad, high + pad
