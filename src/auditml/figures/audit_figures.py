"""The audit's figures drawn: what :mod:`auditml.audit` computed (:mod:`auditml.figure_data`)
turned into PNG files.

:func:`draw_figure` is the ``draw`` an audit's caller passes when it wants figures (``auditml
audit``, ``AuditResults.save``, the sweep and the demo): each attack's ROC plot and gallery of
its most exposed members, the audit's overlay ROC plot, the model-inversion gallery. Importing
this module imports no matplotlib; drawing the first figure does.
"""

from __future__ import annotations

from pathlib import Path

from auditml.figure_data import FigureData, ImageGallery, InversionGallery, RocFigure
from auditml.fileio import write_bytes


def draw_figure(figure: FigureData, path: Path) -> None:
    """Draw ``figure`` as a PNG written atomically at ``path``."""
    if isinstance(figure, InversionGallery):
        from auditml.figures.inversion_gallery import render_gallery

        render_gallery(
            path, figure.reconstructions, figure.nearest_members, figure.class_names,
            member_distances=figure.member_distances, title=figure.title,
        )
        return
    from auditml.figures.plots import gallery_figure, png_bytes, roc_overlay_figure

    if isinstance(figure, RocFigure):
        drawn = roc_overlay_figure(figure.series, attack=figure.title)
    elif isinstance(figure, ImageGallery):
        drawn = gallery_figure(figure.images, figure.captions, title=figure.title)
    else:
        raise TypeError(f"no drawing for {type(figure).__name__}; expected one of "
                        "RocFigure, ImageGallery, InversionGallery")
    write_bytes(path, png_bytes(drawn))
