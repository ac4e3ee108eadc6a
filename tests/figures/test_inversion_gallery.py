"""The model-inversion gallery PNG: grey, RGB and flat inputs drawn, bad inputs refused, the file
written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from auditml.figures.inversion_gallery import GalleryInputError, render_gallery


def pixels(path: Path) -> np.ndarray:
    return imread(path, format="png")


def test_grey_images_are_drawn_one_pair_per_class(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    recon = rng.normal(size=(3, 1, 8, 8))
    path = render_gallery(tmp_path / "gallery.png", recon, recon + 0.5, ["0", "1", "2"],
                          member_distances=[1.0, 2.0, 3.0], title="miface")
    image = pixels(path)
    # 3 pairs of 1.1-inch tiles at 100 dpi: 330 px wide, two tiles and the title band high.
    assert image.shape[:2] == (280, 330)
    assert image[..., :3].std() > 0.1  # drawn, not blank
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_different_reconstructions_give_different_pictures(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    recon, members = rng.normal(size=(2, 2, 1, 8, 8))
    first = pixels(render_gallery(tmp_path / "a.png", recon, members, ["a", "b"]))
    flipped = pixels(render_gallery(tmp_path / "b.png", recon[:, :, ::-1], members, ["a", "b"]))
    assert first.shape == flipped.shape and not np.array_equal(first, flipped)


def test_rgb_images_and_many_classes_wrap_into_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    recon = rng.uniform(size=(12, 3, 4, 4))
    image = pixels(render_gallery(tmp_path / "rgb.png", recon, recon[::-1],
                                  [f"class {k}" for k in range(12)]))
    assert image.shape[:2] == (500, 1100)  # 10 pairs a row: two rows of pairs
    # Colour reached the picture: some pixel's channels differ.
    assert (np.ptp(image[..., :3], axis=-1) > 0.2).any()


def test_flat_inputs_are_drawn_as_bar_charts(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    recon = rng.normal(size=(5, 7))
    image = pixels(render_gallery(tmp_path / "flat.png", recon, recon + 0.3, list("abcde"),
                                  member_distances=np.ones(5)))
    assert image.shape[:2] == (500, 1280)  # 4 charts a row, 2 rows
    assert (np.ptp(image[..., :3], axis=-1) > 0.2).any()  # the two bar colours


def test_a_failed_drawing_keeps_the_previous_gallery(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gallery.png"
    path.write_bytes(b"previous")

    def broken_savefig(self: Figure, *args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        render_gallery(path, np.zeros((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), ["0"])
    assert path.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(("recon", "members", "names", "distances", "fragment"), [
    (np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 4)), ["0"], None, "1 (grey) or 3 (RGB)"),
    (np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), ["0"], None, "(n, C, H, W)"),
    (np.zeros((2, 1, 4, 4)), np.zeros((2, 1, 4, 5)), ["0", "1"], None, "nearest_members"),
    (np.zeros((2, 5)), np.zeros((2, 5)), ["0"], None, "class_names"),
    (np.full((1, 5), np.inf), np.zeros((1, 5)), ["0"], None, "finite"),
    (np.zeros((2, 5)), np.zeros((2, 5)), ["0", "1"], [1.0], "member_distances"),
])
def test_bad_inputs_are_refused_before_drawing(tmp_path: Path, recon: np.ndarray,
                                               members: np.ndarray, names: list[str],
                                               distances: list[float] | None,
                                               fragment: str) -> None:
    with pytest.raises(GalleryInputError) as caught:
        render_gallery(tmp_path / "g.png", recon, members, names, member_distances=distances)
    assert fragment in str(caught.value)
    assert not (tmp_path / "g.png").exists()
