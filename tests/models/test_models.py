from __future__ import annotations

import pytest
import torch
from opacus.validators import ModuleValidator
from torch import nn

from auditml.data import DATASETS, DatasetSpec
from auditml.data.files import default_architectures
from auditml.data.text_tokens import VOCAB_SIZE
from auditml.errors import ConfigError
from auditml.models import MODELS, build_model, predict_logits

SHAPES = {"cnn_28x28": (1, 28, 28), "cnn_28x28_gn": (1, 28, 28), "cnn_8x8": (1, 8, 8),
          "cnn_8x8_gn": (1, 8, 8), "mlp": (1, 8, 8), "mlp_small_tanh": (1, 8, 8),
          "mlp_tabular": (10,), "resnet_groupnorm": (3, 32, 32),
          "scatternet_linear": (1, 28, 28)}
# Causal language models return (N, L, vocabulary) logits, not class scores: checked in
# tests/models/test_causal_lm.py.
LANGUAGE_MODELS = {"gpt2_tiny"}


@pytest.mark.parametrize("arch", sorted(set(MODELS.available()) - LANGUAGE_MODELS))
def test_every_model_has_no_batchnorm_and_suits_dp_sgd(arch: str) -> None:
    model = build_model(arch, SHAPES[arch], 10)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert ModuleValidator.validate(model, strict=False) == []
    out = model(torch.zeros(3, *SHAPES[arch]))
    assert out.shape == (3, 10)


def test_dataset_default_models_fit_their_shapes() -> None:
    for name in DATASETS.available():
        spec = DATASETS.get(name)
        if not isinstance(spec, DatasetSpec):
            continue  # a file format: its defaults are checked below
        model = build_model(spec.default_arch, spec.input_shape, spec.num_classes,
                            task=spec.task)
        if spec.task == "causal_lm":  # token ids in, next-token logits out
            ids = torch.zeros(2, *spec.input_shape, dtype=torch.long)
            assert model(ids).shape == (2, *spec.input_shape, VOCAB_SIZE)
        else:
            assert model(torch.zeros(2, *spec.input_shape)).shape == (2, spec.num_classes)


@pytest.mark.parametrize(
    "shape", [(30,), (1, 28, 28), (3, 28, 28), (1, 8, 8), (2, 8, 8), (3, 32, 32), (5, 7)]
)
def test_file_default_models_fit_their_shapes(shape: tuple[int, ...]) -> None:
    default, dp_arch, _ = default_architectures(shape)
    for arch in (default, dp_arch) if dp_arch is not None else (default,):
        assert build_model(arch, shape, 3)(torch.zeros(2, *shape)).shape == (2, 3)


def test_predict_logits_batches_and_restores_mode() -> None:
    import numpy as np

    model = build_model("mlp", (1, 8, 8), 10)
    model.train()
    x = np.random.default_rng(0).normal(size=(2500, 1, 8, 8)).astype(np.float32)
    logits = predict_logits(model, x, batch_size=1000)
    assert model.training
    assert logits.shape == (2500, 10) and logits.dtype == np.float64
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)


def test_predict_logits_runs_in_eval_mode() -> None:
    import numpy as np

    # Dropout makes train-mode outputs random, so only eval mode matches the eval forward pass.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5), nn.Linear(64, 3)).train()
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    logits = predict_logits(model, x)
    assert model.training
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("arch", ["cnn_28x28", "resnet_groupnorm"])
def test_predict_logits_is_layout_independent_and_restores_the_weights(arch: str) -> None:
    import numpy as np

    torch.manual_seed(0)
    model = build_model(arch, SHAPES[arch], 10)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    x = np.random.default_rng(1).normal(size=(300, *SHAPES[arch])).astype(np.float32)
    logits = predict_logits(model, x)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
    for name, parameter in model.named_parameters():
        assert parameter.is_contiguous(), name
        assert torch.equal(parameter, before[name]), name


@pytest.mark.parametrize("arch", ["cnn_8x8", "cnn_28x28", "resnet_groupnorm"])
def test_image_models_refuse_tabular_rows_in_one_line(arch: str) -> None:
    with pytest.raises(ConfigError, match=rf"model.arch='{arch}' cannot take inputs of shape "
                                          r"\(10,\) \(.+\); choose an architecture") as err:
        build_model(arch, (10,), 2)
    assert "\n" not in str(err.value)


def test_a_model_without_class_scores_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MODELS, "get", lambda arch: lambda shape, classes: nn.Flatten())
    with pytest.raises(ConfigError, match=r"gives outputs of shape \(10,\) .* not \(2,\) class"):
        build_model("flat", (10,), 2)


def test_the_shape_probe_leaves_the_model_as_built() -> None:
    torch.manual_seed(0)
    built = build_model("mlp_tabular", (10,), 2)
    torch.manual_seed(0)
    plain = MODELS.get("mlp_tabular")((10,), 2)
    assert built.training
    for (name, parameter), expected in zip(built.named_parameters(), plain.parameters(),
                                           strict=True):
        assert torch.equal(parameter, expected), name
