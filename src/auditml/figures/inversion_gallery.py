"""The model-inversion gallery: each class's reconstruction beside its nearest training example.

Drawn with matplotlib's object API and rendered by :func:`auditml.figures.plots.png_bytes` (Agg
canvas, never ``pyplot``), imported when a gallery is drawn: starting an audit must not import
matplotlib. The PNG is written atomically, so a failed drawing never leaves half a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.errors import AuditMLError
from auditml.fileio import write_bytes

# Pairs per row of the gallery, and the size of one image tile in inches.
_PAIRS_PER_ROW = 10
_TILE = 1.1
_BAR_TILE_WIDTH = 3.2


class GalleryInputError(AuditMLError, ValueError):
    """The reconstructions, nearest members or class names cannot be drawn together."""


def render_gallery(
    path: Path,
    reconstructions: ArrayLike,
    nearest_members: ArrayLike,
    class_names: Sequence[str],
    *,
    member_distances: ArrayLike | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG at ``path``: for each class, its reconstruction above its nearest member.

    Images ``(n, C, H, W)`` with C = 1 (grey) or 3 (RGB). Each pair is drawn on one scale (its
    joint minimum to maximum), so a reconstruction and its member can be compared by eye;
    values are in the dataset's standardised space, where absolute levels mean little. Flat
    inputs ``(n, F)`` are drawn as bar charts of the F features, reconstruction and member side
    by side. ``member_distances`` (one per class) are printed under the members. Returns ``path``.
    """
    recon = np.asarray(reconstructions, dtype=np.float64)
    members = np.asarray(nearest_members, dtype=np.float64)
    names = [str(name) for name in class_names]
    distances = _check(recon, members, names, member_distances)

    from matplotlib.figure import Figure

    from auditml.figures.plots import png_bytes

    if recon.ndim == 4:
        figure = _image_figure(Figure, recon, members, names, distances)
    else:
        figure = _bar_figure(Figure, recon, members, names, distances)
    if title:
        figure.suptitle(title, fontsize="small")
    write_bytes(Path(path), png_bytes(figure, dpi=100))
    return Path(path)


def _image_figure(figure_class: Any, recon: np.ndarray, members: np.ndarray, names: list[str],
                  distances: np.ndarray | None) -> Any:
    count = len(recon)
    columns = min(count, _PAIRS_PER_ROW)
    pair_rows = -(-count // columns)
    figure = figure_class(figsize=(columns * _TILE, pair_rows * 2 * _TILE + 0.6))
    grid = figure.add_gridspec(pair_rows * 2, columns)
    for i in range(count):
        row, column = 2 * (i // columns), i % columns
        low = min(recon[i].min(), members[i].min())
        high = max(recon[i].max(), members[i].max())
        for offset, image in ((0, recon[i]), (1, members[i])):
            axes = figure.add_subplot(grid[row + offset, column])
            axes.set_xticks([])
            axes.set_yticks([])
            scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
            if scaled.shape[0] == 1:
                axes.imshow(scaled[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                axes.imshow(np.moveaxis(scaled, 0, -1), interpolation="nearest")
            if offset == 0:
                axes.set_title(names[i], fontsize=8)
                if column == 0:
                    axes.set_ylabel("inverted", fontsize=7)
            else:
                if column == 0:
                    axes.set_ylabel("nearest member", fontsize=7)
                if distances is not None:
                    axes.set_xlabel(f"d={distances[i]:.2f}", fontsize=7)
    figure.subplots_adjust(wspace=0.1, hspace=0.35)
    return figure


def _bar_figure(figure_class: Any, recon: np.ndarray, members: np.ndarray, names: list[str],
                distances: np.ndarray | None) -> Any:
    count, features = recon.shape
    columns = min(count, 4)
    rows = -(-count // columns)
    figure = figure_class(figsize=(columns * _BAR_TILE_WIDTH, rows * 2.2 + 0.6))
    positions = np.arange(features)
    for i in range(count):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.bar(positions - 0.2, recon[i], width=0.4, label="inverted")
        axes.bar(positions + 0.2, members[i], width=0.4, label="nearest member")
        label = names[i] if distances is None else f"{names[i]} (d={distances[i]:.2f})"
        axes.set_title(label, fontsize=8)
        axes.set_xlabel("feature", fontsize=7)
        axes.tick_params(labelsize=6)
        if i == 0:
            axes.legend(fontsize=6)
    # A fixed spacing, not a layout engine: tight_layout over many panels is slow to compute.
    figure.subplots_adjust(wspace=0.25, hspace=0.6)
    return figure


def _check(recon: np.ndarray, members: np.ndarray, names: list[str],
           member_distances: ArrayLike | None) -> np.ndarray | None:
    if recon.ndim not in (2, 4) or len(recon) == 0:
        raise GalleryInputError(
            "reconstructions must be images (n, C, H, W) or flat inputs (n, F), got shape "
            f"{recon.shape}"
        )
    if recon.ndim == 4 and recon.shape[1] not in (1, 3):
        raise GalleryInputError(
            f"images must have 1 (grey) or 3 (RGB) channels to be drawn, got {recon.shape[1]}"
        )
    if members.shape != recon.shape:
        raise GalleryInputError(
            f"nearest_members must have the reconstructions' shape {recon.shape}, got "
            f"{members.shape}"
        )
    if len(names) != len(recon):
        raise GalleryInputError(
            f"class_names must name each of the {len(recon)} reconstructions, got {len(names)}"
        )
    if not (np.isfinite(recon).all() and np.isfinite(members).all()):
        raise GalleryInputError("reconstructions and nearest_members must be finite")
    if member_distances is None:
        return None
    distances = np.asarray(member_distances, dtype=np.float64)
    if distances.shape != (len(recon),) or not np.isfinite(distances).all():
        raise GalleryInputError(
            f"member_distances must be {len(recon)} finite numbers, got shape {distances.shape}"
        )
    return distances
