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


class _CountingFrontEnd(ScatteringFrontEnd):
    """The real front end, counting the images it transforms."""

    def __init__(self) -> None:
        super().__init__((1, 28, 28))
        self.transformed = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.transformed += len(images)
        return super().forward(images)


def test_each_image_is_transformed_once_per_process_whatever_set_it_comes_in() -> None:
    from auditml.models import scattering

    scattering._MEMO.clear()
    scattering._memo_bytes = 0
    front_end = _CountingFrontEnd()
    audited = _images(12, seed=7)
    fresh = ScatteringFrontEnd((1, 28, 28))(torch.from_numpy(audited)).numpy()
    first = scattering.transformed_rows(front_end, audited)
    np.testing.assert_array_equal(first, fresh)
    assert front_end.transformed == 12
    # A reference model's half, shuffled, and a prediction on all of them: nothing new.
    half = audited[[9, 2, 5, 0, 11, 4]]
    np.testing.assert_array_equal(scattering.transformed_rows(front_end, half), fresh[[9, 2, 5, 0,
                                                                                       11, 4]])
    assert front_end.transformed == 12
    # One new image among them: only it is transformed.
    mixed = np.concatenate([audited[:3], _images(1, seed=8)])
    scattering.transformed_rows(front_end, mixed)
    assert front_end.transformed == 13


def test_predictions_use_the_remembered_features_and_equal_the_plain_forward() -> None:
    from auditml.models import scattering
    from auditml.models.inference import predict_logits

    model = build_model("scatternet_linear", (1, 28, 28), 10)
    assert isinstance(model, FeatureModel)
    counting = _CountingFrontEnd()
    model.front_end = counting
    images = _images(6, seed=9)
    scattering._MEMO.clear()
    scattering._memo_bytes = 0
    with torch.enable_grad():
        plain = model(torch.from_numpy(images)).detach().numpy()  # grad on: no memo
    assert counting.transformed == 6
    predicted = predict_logits(model, images)
    again = predict_logits(model, images)
    np.testing.assert_allclose(predicted, plain, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(again, predicted)
    assert counting.transformed == 12  # the first prediction transformed them, the second not


def test_the_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from auditml.models import scattering

    scattering._MEMO.clear()
    scattering._memo_bytes = 0
    monkeypatch.setattr(scattering, "MEMO_BYTES", 3 * 81 * 7 * 7 * 4)  # three images' features
    scattering.transformed_rows(ScatteringFrontEnd((1, 28, 28)), _images(5, seed=10))
    assert len(scattering._MEMO) == 3 and scattering._memo_bytes <= scattering.MEMO_BYTES


def test_features_read_from_the_disk_cache_are_remembered_for_predictions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from auditml.models import scattering

    monkeypatch.setenv("AUDITML_CACHE_DIR", str(tmp_path))
    images = _images(4, seed=11)
    scattering_features(ScatteringFrontEnd((1, 28, 28)), images)  # computed, written to disk
    scattering._MEMO.clear()
    scattering._memo_bytes = 0
    from_disk = scattering_features(ScatteringFrontEnd((1, 28, 28)), images)  # a new process
    counting = _CountingFrontEnd()
    np.testing.assert_array_equal(scattering.transformed_rows(counting, images), from_disk)
    assert counting.transformed == 0  # the training set's predictions transform nothing again


def test_the_heads_fixed_layers_are_split_off_and_joined_back_under_their_names() -> None:
    from torch import nn

    model = build_model("scatternet_linear", (1, 28, 28), 10)
    fixed, trained = model.split_head()
    assert [type(layer) for layer in fixed] == [nn.GroupNorm, nn.Flatten]
    assert [name for name, _ in trained.named_children()] == ["2"]
    assert trained[0] is model.head[2]  # the head's own module: training it trains the model
    assert model.head_input_shape == (81 * 7 * 7,)
    images = _images(3)
    inputs = model.head_inputs(images)
    assert inputs.shape == (3, 81 * 7 * 7) and inputs.dtype == np.float32
    torch.testing.assert_close(trained(torch.from_numpy(inputs)), model(torch.from_numpy(images)))
    # DP-SGD's preparation may rebuild the trained part: it goes back under the same names.
    rebuilt = nn.Sequential(nn.Linear(81 * 7 * 7, 10))
    model.join_head(rebuilt)
    assert model.head[2] is rebuilt[0] and isinstance(model.head[0], nn.GroupNorm)
    assert sorted(model.state_dict()) == ["head.2.bias", "head.2.weight"]
    # A normalisation with weights trains, so it is not fixed; nor is a head that is not a
    # Sequential; and the last layer always trains.
    front_end = ScatteringFrontEnd((1, 28, 28))
    affine = FeatureModel(front_end, nn.Sequential(nn.GroupNorm(27, 81), nn.Flatten(),
                                                    nn.Linear(81 * 49, 10)))
    assert len(affine.split_head()[0]) == 0
    flat = FeatureModel(front_end, nn.Flatten())
    assert len(flat.split_head()[0]) == 0 and flat.split_head()[1] is flat.head
    assert len(FeatureModel(front_end, nn.Sequential(nn.Flatten())).split_head()[0]) == 0
