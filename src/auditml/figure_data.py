"""What an audit's figures show, as plain data: the audit computes it, something else draws it.

The audit (:mod:`auditml.audit`) never draws: it computes scores and numbers, and for each figure
the arrays and captions the figure shows (a :data:`FigureData`). A caller that wants figures
passes a :data:`Draw` function, e.g. :func:`auditml.figures.audit_figures.draw_figure` (what
``auditml audit`` and ``AuditResults.save`` pass); without one an audit writes its records and
no PNG. This module sits below both sides, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RocSeries:
    """One ROC curve of an overlay; ``auc`` is the value reported, shown in the legend."""

    label: str
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


@dataclass(frozen=True)
class RocFigure:
    """ROC curves on log-log axes (one attack's, or every attack of an audit), titled ``title``."""

    series: Sequence[RocSeries]
    title: str


@dataclass(frozen=True)
class ImageGallery:
    """Images in a grid, one caption each (the members an attack finds most exposed)."""

    images: np.ndarray
    captions: Sequence[str]
    title: str


@dataclass(frozen=True)
class InversionGallery:
    """Each class's reconstruction above its nearest member (model inversion)."""

    reconstructions: np.ndarray
    nearest_members: np.ndarray
    class_names: Sequence[str]
    member_distances: np.ndarray | None
    title: str


FigureData = RocFigure | ImageGallery | InversionGallery

Draw = Callable[[FigureData, Path], None]
"""Draws a figure as a PNG written (atomically) at the path."""
