"""The report's figures: what they draw, and that drawing them leaves pyplot alone."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from auditml.figures.plots import (
    LOG_FLOOR,
    LeakagePoint,
    RocSeries,
    accuracy_vs_leakage_figure,
    png_bytes,
    roc_overlay_figure,
    svg_element,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _series() -> list[RocSeries]:
    return [
        RocSeries("No DP", np.array([0.0, 0.0, 0.5, 1.0]), np.array([0.0, 0.25, 0.75, 1.0]), 0.75),
        RocSeries("ε=5", np.array([0.0, 0.5, 1.0]), np.array([0.0, 0.5, 1.0]), 0.5),
    ]


def test_roc_overlay_is_log_log_with_chance_line_and_auc_legend() -> None:
    figure = roc_overlay_figure(_series(), attack="mia_threshold")
    assert isinstance(figure, Figure)
    [axes] = figure.axes
    assert (axes.get_xscale(), axes.get_yscale()) == ("log", "log")
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["No DP (AUC 0.750)", "ε=5 (AUC 0.500)", "chance"]


def test_roc_overlay_writes_rates_in_percent_like_the_tables() -> None:
    """The tables say 1.0% where the ROC axes said 10^-2: one unit for each figure."""
    [axes] = roc_overlay_figure(_series(), attack="mia_threshold").axes
    for axis in (axes.xaxis, axes.yaxis):
        shown = {axis.get_major_formatter()(value, 0) for value in (0.001, 0.01, 1.0)}
        assert shown == {"0.1%", "1%", "100%"}


def test_roc_overlay_starts_a_decade_below_the_smallest_rate() -> None:
    # The smallest non-zero rate is 0.25, so the axes start at 0.1 and zeros are drawn there.
    [axes] = roc_overlay_figure(_series(), attack="mia_threshold").axes
    assert axes.get_xlim() == pytest.approx((0.1, 1.0))
    assert axes.get_ylim() == pytest.approx((0.1, 1.0))
    curves = axes.get_lines()[:2]
    np.testing.assert_allclose(curves[0].get_xdata(), [0.1, 0.1, 0.5, 1.0])
    np.testing.assert_allclose(curves[0].get_ydata(), [0.1, 0.25, 0.75, 1.0])


@pytest.mark.parametrize(("smallest", "low"), [(0.005, 1e-3), (0.001, 1e-4), (1e-9, LOG_FLOOR)])
def test_roc_overlay_lower_end(smallest: float, low: float) -> None:
    series = [RocSeries("a", np.array([0.0, smallest, 1.0]), np.array([0.0, 0.5, 1.0]), 0.7)]
    [axes] = roc_overlay_figure(series, attack="mia_threshold").axes
    assert axes.get_xlim()[0] == pytest.approx(low)
    assert min(axes.get_lines()[0].get_xdata()) == pytest.approx(low)


def test_roc_overlay_rejects_a_floor_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match="`floor` must be in"):
        roc_overlay_figure(_series(), attack="mia_threshold", floor=0.0)


def test_accuracy_vs_leakage_has_one_annotated_point_per_run() -> None:
    points = [LeakagePoint("No DP", 0.71, 0.988), LeakagePoint("ε=5", 0.52, 0.95)]
    figure = accuracy_vs_leakage_figure(points, attack="mia_threshold")
    [axes] = figure.axes
    assert [text.get_text() for text in axes.texts] == ["No DP", "ε=5"]
    [scatter] = axes.collections
    np.testing.assert_allclose(scatter.get_offsets(), [[0.71, 0.988], [0.52, 0.95]])
    low, high = axes.get_xlim()
    assert low < 0.5 < high


def test_a_single_point_gets_a_visible_range() -> None:
    figure = accuracy_vs_leakage_figure([LeakagePoint("No DP", 0.5, 1.0)], attack="x")
    low, high = figure.axes[0].get_ylim()
    assert low < 1.0 < high


def test_png_bytes_are_a_png() -> None:
    assert png_bytes(roc_overlay_figure(_series(), attack="mia_threshold")).startswith(PNG_MAGIC)
    points = [LeakagePoint("No DP", 0.7, 0.9)]
    assert png_bytes(accuracy_vs_leakage_figure(points, attack="a")).startswith(PNG_MAGIC)


def test_drawing_never_imports_pyplot() -> None:
    code = (
        "import sys, numpy as np\n"
        "from auditml.figures.plots import *\n"
        "s = [RocSeries('a', np.array([0., 1.]), np.array([0., 1.]), 0.5)]\n"
        "png_bytes(roc_overlay_figure(s, attack='x'))\n"
        "png_bytes(accuracy_vs_leakage_figure([LeakagePoint('a', 0.5, 0.9)], attack='x'))\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_svg_element_is_inline_markup_without_fixed_size_prolog_or_comments() -> None:
    svg = svg_element(
        roc_overlay_figure(_series(), attack="<x>"), prefix="f1", description='a "b" <c>'
    )
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    root = svg[: svg.index(">")]
    assert "viewBox=" in root and " width=" not in root and " height=" not in root
    assert 'aria-label="a &quot;b&quot; &lt;c&gt;"' in root
    assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<!--" not in svg
    assert "<metadata" not in svg and "<text" not in svg  # text drawn as paths: no font needed


def test_svg_ids_carry_the_prefix_so_two_figures_never_share_one() -> None:
    import re

    svg = svg_element(roc_overlay_figure(_series(), attack="x"), prefix="f7", description="d")
    ids = re.findall(r'\bid="([^"]+)"', svg)
    references = re.findall(r'(?:href="#|url\(#)([^")]+)', svg)
    assert ids and references
    assert all(name.startswith("f7-") for name in ids)
    assert set(references) <= set(ids)


def test_svg_of_the_same_figure_is_the_same_text() -> None:
    first = svg_element(roc_overlay_figure(_series(), attack="x"), prefix="a", description="d")
    again = svg_element(roc_overlay_figure(_series(), attack="x"), prefix="a", description="d")
    assert first == again
