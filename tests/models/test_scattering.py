"""ScatterNet models: the fixed scattering front end (81 x 7 x 7 per 28 x 28 grey image, no
state), its features cached by content, and a trainable head the fast path clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from auditml.models import build_model
from auditml.models.scattering import FeatureModel, ScatteringFrontEnd, scattering_features
from auditml.training.per_example import fast_path_problems


def _images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 1, 28, 28)).astype(np.float32)


def test_front_end_gives_81_channels_at_a_quarter_resolution_and_holds_no_state() -> None:
    front_end = ScatteringFrontEnd((1, 28, 28))
    out = front_end(torch.from_numpy(_images(3)))
    assert out.shape == (3, 81, 7, 7)
    assert list(front_end.parameters()) == [] and list(front_end.buffers()) == []
    # The first channel is the low-pass average: a constant image gives a constant map.
    flat = front_end(torch.ones(1, 1, 28, 28))[0, 0]
    assert torch.allclose(flat, flat.mean().expand_as(flat), atol=1e-3)


def test_features_are_deterministic_and_the_cached_copy_equals_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUDITML_CACHE_DIR", str(tmp_path))
    images = _images(5)
    fresh = ScatteringFrontEnd((1, 28, 28))(torch.from_numpy(images)).numpy()
    first = scattering_features(ScatteringFrontEnd((1, 28, 28)), images)
    assert len(list(tmp_path.glob("scattering.decoded-*.npy"))) == 1
    cached = scattering_features(ScatteringFrontEnd((1, 28, 28)), images)
    np.testing.assert_array_equal(first, fresh)
    np.testing.assert_array_equal(cached, fresh)
    # Other images are not served from the first entry.
    other = scattering_features(ScatteringFrontEnd((1, 28, 28)), _images(5, seed=1))
    assert not np.array_equal(other, fresh)


def test_a_corrupt_cache_entry_is_computed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUDITML_CACHE_DIR", str(tmp_path))
    images = _images(4)
    fresh = scattering_features(ScatteringFrontEnd((1, 28, 28)), images)
    (entry,) = tmp_path.glob("scattering.decoded-*.npy")
    np.save(entry, np.zeros((4, 3), dtype=np.float32))  # wrong shape: refused by accept()
    np.testing.assert_array_equal(
        scattering_features(ScatteringFrontEnd((1, 28, 28)), images), fresh
    )


def test_scatternet_linear_takes_raw_images_and_its_head_is_on_the_fast_path() -> None:
    model = build_model("scatternet_linear", (1, 28, 28), 10)
    assert isinstance(model, FeatureModel)
    images = _images(4)
    logits = model(torch.from_numpy(images))
    assert logits.shape == (4, 10)
    # The released model on raw images equals the head on the (cached) features.
    head_logits = model.head(torch.from_numpy(model.features(images)))
    torch.testing.assert_close(logits, head_logits)
    assert fast_path_problems(model.head) == []
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["head.2.weight", "head.2.bias"]  # nothing of the front end
    assert sorted(model.state_dict()) == ["head.2.bias", "head.2.weight"]


def test_kymatio_imports_with_this_scipy() -> None:
    import scipy.special

    from auditml.models.scattering import _import_kymatio_scattering

    assert _import_kymatio_scattering().__name__ == "Scattering2D"
    assert hasattr(scipy.special, "sph_harm")
