from __future__ import annotations

import pytest

from auditml.attacks import ATTACKS
from auditml.data import DATASETS, DatasetSpec
from auditml.errors import UnknownNameError
from auditml.models import MODELS
from auditml.registry import Registry


def test_unknown_name_lists_the_registrys_own_names() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("alpha", 1)
    registry.register("beta", 2)
    with pytest.raises(UnknownNameError) as caught:
        registry.get("alpah")
    assert str(caught.value) == (
        "unknown widget 'alpah' (did you mean 'alpha'?); available: alpha, beta"
    )


def test_duplicate_registration_is_refused() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a", 2)


def test_shipped_registries() -> None:
    assert DATASETS.available() == [
        "adult", "cifar10", "csv", "diabetes", "digits", "fashion_mnist", "mnist", "npz",
        "purchase100", "texas100", "text", "text_public",
    ]
    assert MODELS.available() == [
        "cnn_28x28", "cnn_28x28_gn", "cnn_8x8", "cnn_8x8_gn", "gpt2_tiny", "mlp", "mlp_small_tanh",
        "mlp_tabular", "resnet_groupnorm", "scatternet_linear",
    ]
    assert "mia_threshold" in ATTACKS
    for name in DATASETS.available():
        entry = DATASETS.get(name)
        if isinstance(entry, DatasetSpec):  # file formats choose theirs from the file
            assert entry.default_arch in MODELS


def test_a_lazy_entry_is_imported_only_when_fetched() -> None:
    import sys

    registry: Registry[object] = Registry("widget")
    sys.modules.pop("colorsys", None)
    registry.register_lazy("hls", "colorsys", "rgb_to_hls")
    assert "hls" in registry and registry.available() == ["hls"]
    assert "colorsys" not in sys.modules
    fetched = registry.get("hls")
    assert fetched is sys.modules["colorsys"].rgb_to_hls
    assert registry.get("hls") is fetched
    with pytest.raises(ValueError, match="already registered"):
        registry.register("hls", 1)
