"""ScatterNet models: fixed wavelet-scattering features and a small trainable head.

Tramèr & Boneh (2021, "Differentially Private Learning Needs Better Features (or Much More
Data)") reach 98.7 % on MNIST and 89.7 % on Fashion-MNIST at ε = 3 with a linear model on the
scattering transform of the images (Oyallon & Mallat): J = 2 scales and L = 8 angles give
1 + J L + L² J (J - 1) / 2 = 81 channels at a quarter of the resolution (81 x 7 x 7 for a
28 x 28 grey image). The transform has no weights, so it costs no privacy and needs no
per-example gradients: DP-SGD trains only the head (GroupNorm without affine weights on the 81
channels in 27 groups, as their Fashion-MNIST model, then a linear layer), whose layers
auditml's fast path clips (:mod:`auditml.training.per_example`).

The released model takes raw images (attacks and audits feed them), but training does not
compute the transform every epoch: :func:`scattering_features` computes it once per set of
images and keeps it in the user's cache directory (:mod:`auditml.data.cache`), and the trainer
fits :attr:`FeatureModel.head` on those features.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from auditml.data.cache import cached_by_content

# The scattering transform's scales and angles (Tramèr & Boneh's data.get_scatter_transform).
SCATTERING_J = 2
SCATTERING_L = 8
# GroupNorm groups over the 81 channels: Tramèr & Boneh's Fashion-MNIST setting (27 groups of 3).
HEAD_GROUPS = 27
# Images per transform call: bounds the memory of the complex intermediate tensors.
_CHUNK = 1024
# Each image's features, by a digest of its bytes, kept in this process (least recently used
# out first) up to this many bytes: the audited examples are transformed once per audit, not
# once per prediction and per reference model (an audit's reference models train on halves of
# them, and every model predicts on all of them). 16 KB per 28x28 grey image: ~65,000 images.
MEMO_BYTES = 1 << 30
_MEMO: OrderedDict[bytes, np.ndarray] = OrderedDict()
_memo_bytes = 0


def _import_kymatio_scattering() -> Any:
    """kymatio's ``Scattering2D`` for torch.

    kymatio 0.3.0 imports ``scipy.special.sph_harm`` at import time (for its 3-D scattering),
    and SciPy 1.17 removed that name (replaced by ``sph_harm_y``). The 2-D scattering used
    here never calls it, so a placeholder that raises is provided when the name is missing,
    only so that the import succeeds.
    """
    import scipy.special

    if not hasattr(scipy.special, "sph_harm"):
        def sph_harm(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(
                "scipy.special.sph_harm was removed in SciPy 1.17; auditml provides this name "
                "only so that kymatio 0.3.0 imports (its 2-D scattering does not call it)"
            )

        scipy.special.sph_harm = sph_harm
    from kymatio.torch import Scattering2D

    return Scattering2D


class ScatteringFrontEnd(nn.Module):
    """The scattering transform of ``(N, C, H, W)`` images: ``(N, 81 C, H / 4, W / 4)``.

    kymatio's filters are kept outside the module tree, so the front end has no parameters and
    no buffers: nothing of it is saved with the model, trained, clipped or noised. They follow
    the input to its device when first used there.
    """

    def __init__(self, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = input_shape
        if height % 4 or width % 4:
            raise ValueError(f"the scattering needs a height and width divisible by 4, got "
                             f"{height}x{width}")
        self.input_shape = (channels, height, width)
        self.output_shape = (81 * channels, height // 4, width // 4)
        scattering = _import_kymatio_scattering()(
            J=SCATTERING_J, L=SCATTERING_L, shape=(height, width)
        )
        # A plain attribute, not a submodule: object.__setattr__ bypasses nn.Module's registry.
        object.__setattr__(self, "_scattering", scattering)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scattering = self.__dict__["_scattering"]
        if next(iter(scattering.buffers())).device != images.device:
            scattering.to(images.device)
        out = scattering(images.float())  # (N, C, 81, H/4, W/4)
        return out.reshape(len(images), *self.output_shape)


# Layers a head may start with that training computes once, with the front end: without weights
# and acting on each example alone, their output for an example never changes while the rest of
# the head trains (GroupNorm and LayerNorm normalise within one example).
FIXED_LAYER_TYPES = (nn.GroupNorm, nn.LayerNorm, nn.Flatten, nn.Identity)
# Rows per pass of the fixed layers over cached features.
_FIXED_CHUNK = 4096


class FeatureModel(nn.Module):
    """``head(front_end(x))``: a fixed feature extractor and the trainable head.

    The trainer recognises this class and trains the head on features computed once
    (:meth:`head_inputs`), so the per-example gradients are those of the head alone. The head's
    leading layers without weights that act on each example alone (:data:`FIXED_LAYER_TYPES`;
    ``scatternet_linear``'s GroupNorm and Flatten) are computed once with the features too, and
    only the rest is trained (:meth:`split_head`): the same mechanism, since those layers have
    no gradient to clip, at a fraction of the cost (a GroupNorm pass over 10,000 validation
    features every epoch took more time than the linear layer's training).
    """

    def __init__(self, front_end: ScatteringFrontEnd, head: nn.Module) -> None:
        super().__init__()
        self.front_end, self.head = front_end, head

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return self.front_end.output_shape

    def features(self, images: np.ndarray) -> np.ndarray:
        """The front end's features of ``images`` (float32), from the cache when computed
        before."""
        return scattering_features(self.front_end, images)

    def split_head(self) -> tuple[nn.Sequential, nn.Module]:
        """``(fixed, trained)``: the head's leading fixed layers (an empty ``Sequential`` when
        there are none, or the head is not a ``Sequential``) and the rest, the head's own
        modules under their own names. At least one layer is left to train."""
        if not isinstance(self.head, nn.Sequential):
            return nn.Sequential(), self.head
        count = 0
        for layer in list(self.head)[:-1]:
            if not isinstance(layer, FIXED_LAYER_TYPES) or any(True for _ in layer.parameters()):
                break
            count += 1
        return self.head[:count], self.head[count:]

    def head_inputs(self, images: np.ndarray) -> np.ndarray:
        """What the trained part of the head takes: the fixed layers applied to the features of
        ``images`` (float32)."""
        fixed, _ = self.split_head()
        features = self.features(images)
        if not len(fixed):
            return features
        if not len(features):
            return np.zeros((0, *self.head_input_shape), np.float32)
        with torch.no_grad():
            return np.concatenate([
                fixed(torch.from_numpy(features[start:start + _FIXED_CHUNK])).numpy()
                for start in range(0, len(features), _FIXED_CHUNK)
            ])

    @property
    def head_input_shape(self) -> tuple[int, ...]:
        """The shape of one row of :meth:`head_inputs`."""
        fixed, _ = self.split_head()
        with torch.no_grad():
            return tuple(fixed(torch.zeros(1, *self.feature_shape)).shape[1:])

    def join_head(self, trained: nn.Module) -> None:
        """Make the head the fixed layers followed by ``trained`` (which DP-SGD's preparation
        may have rebuilt from :meth:`split_head`'s), under the names they had; by position
        where a name would repeat one of the fixed layers'."""
        fixed, _ = self.split_head()
        if not len(fixed):
            self.head = trained
            return
        layers = [*fixed.named_children()]
        rest = [*trained.named_children()] if isinstance(trained, nn.Sequential) else [
            ("", trained)]
        taken = {name for name, _ in layers}
        if any(not name or name in taken for name, _ in rest):
            # Positions, as a Sequential names its layers ("2" for the third).
            rest = [(str(len(layers) + index), layer) for index, (_, layer) in enumerate(rest)]
        self.head = nn.Sequential(OrderedDict(layers + rest))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or images.device.type != "cpu":
            return self.head(self.front_end(images))
        # Predictions (no gradient): each image's features once per process (_MEMO).
        rows = transformed_rows(self.front_end, images.detach().numpy())
        return self.head(torch.from_numpy(rows))


def scattering_features(front_end: ScatteringFrontEnd, images: np.ndarray) -> np.ndarray:
    """The scattering features of ``images`` (``(N, C, H, W)``), cached by the images' content.

    The cache key is a hash of the array's bytes, shape and the transform's settings, so the
    same images (a dataset's training or test split) are transformed once per machine.
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    digest = hashlib.sha256(
        f"scattering-J{SCATTERING_J}-L{SCATTERING_L}|{images.shape}".encode()
    )
    digest.update(images.data)
    expected = (len(images), *front_end.output_shape)

    def compute() -> dict[str, np.ndarray]:
        return {"features": transformed_rows(front_end, images)}

    def accept(arrays: dict[str, np.ndarray]) -> bool:
        found = arrays.get("features")
        return (found is not None and found.shape == expected and found.dtype == np.float32)

    features = cached_by_content(digest.hexdigest()[:24], "scattering", compute,
                                 accept)["features"]
    _remember(_row_keys(images), features)  # read from disk: later predictions reuse them too
    return features


def transformed_rows(front_end: ScatteringFrontEnd, images: np.ndarray) -> np.ndarray:
    """``front_end``'s features of ``images``, each image transformed at most once per process.

    The transform acts on each image alone, so a row's features depend on its bytes only: rows
    seen before (by a BLAKE2 digest of the image and the transform's settings) are looked up,
    the others transformed in chunks and remembered, up to :data:`MEMO_BYTES`.
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    keys = _row_keys(images)
    out = np.empty((len(images), *front_end.output_shape), dtype=np.float32)
    missing = []
    for index, key in enumerate(keys):
        found = _MEMO.get(key)
        if found is None:
            missing.append(index)
        else:
            _MEMO.move_to_end(key)
            out[index] = found
    with torch.no_grad():
        for start in range(0, len(missing), _CHUNK):
            chosen = missing[start:start + _CHUNK]
            out[chosen] = front_end(torch.from_numpy(images[chosen])).numpy()
    _remember([keys[index] for index in missing], out[missing])
    return out


def _row_keys(images: np.ndarray) -> list[bytes]:
    """Each image's memo key: a BLAKE2 digest of its bytes, keyed by the transform's settings."""
    settings = f"J{SCATTERING_J}-L{SCATTERING_L}|{images.shape[1:]}".encode()[:64]
    return [hashlib.blake2b(np.ascontiguousarray(row, dtype=np.float32).tobytes(),
                            digest_size=16, key=settings).digest() for row in images]


def _remember(keys: list[bytes], rows: np.ndarray) -> None:
    """Keep each row under its key (those not kept yet), then drop the least recently used
    beyond :data:`MEMO_BYTES`."""
    global _memo_bytes
    for key, row in zip(keys, rows, strict=True):
        if key not in _MEMO:
            _MEMO[key] = kept = row.copy()
            _memo_bytes += kept.nbytes
    while _memo_bytes > MEMO_BYTES and _MEMO:
        _memo_bytes -= _MEMO.popitem(last=False)[1].nbytes


def _linear_head(feature_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    channels, height, width = feature_shape
    return nn.Sequential(
        nn.GroupNorm(HEAD_GROUPS, channels, affine=False),  # 81 C channels: divisible by 27
        nn.Flatten(),
        nn.Linear(channels * height * width, num_classes),
    )


def scatternet_linear(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The scattering transform (J=2, L=8), GroupNorm and a linear layer: Tramèr & Boneh's
    ScatterNet + linear model. Images of shape (C, H, W) with H and W divisible by 4."""
    if len(input_shape) != 3:
        raise ValueError(f"scatternet_linear takes images (channels, height, width), got inputs "
                         f"of shape {tuple(input_shape)}")
    channels, height, width = (int(size) for size in input_shape)
    front_end = ScatteringFrontEnd((channels, height, width))
    return FeatureModel(front_end, _linear_head(front_end.output_shape, num_classes))
