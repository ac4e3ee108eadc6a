"""Per-example clipping from one forward and one backward pass (the fast DP-SGD path).

Forward hooks keep each layer's input and output. After the loss, one ``autograd.grad`` call
asks only for the gradients with respect to those outputs (the "backprops"): autograd then skips
every weight gradient of the ordinary backward pass. Each layer's rule turns (input, backprop)
into per-example squared norms; their sum over layers gives each example's clip factor, and the
rules return the clipped sums. This is the book-keeping scheme of Bu et al. (2023), "Differentially
private optimization on large model at small cost": the cost is one backward pass plus the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from auditml.errors import ModelError
from auditml.training.per_example.base import LayerRule


@dataclass
class _Capture:
    activation: torch.Tensor
    activation_version: int
    output: torch.Tensor
    output_version: int


class PerExampleClipper:
    """Clip per-example gradients of ``model`` to ``max_grad_norm`` and sum them.

    ``layers`` are (name, module, rule) for every module holding trainable parameters; the caller
    (:func:`auditml.training.per_example.fast_path_problems`) has checked that they cover all of
    them. Use as a context manager, or call :meth:`close` to remove the hooks.
    """

    def __init__(self, model: nn.Module, layers: list[tuple[str, nn.Module, LayerRule]]) -> None:
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self._layers = layers
        self._captures: dict[str, _Capture] = {}
        self._handles: list[RemovableHandle] = [
            module.register_forward_hook(self._hook_for(name)) for name, module, _ in layers
        ]

    def _hook_for(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if not torch.is_grad_enabled():
                return
            if name in self._captures:
                raise ModelError(
                    f"layer '{name}' ran twice in one forward pass; per-example gradients of a "
                    "shared layer need Opacus: set training.dp.grad_sample_mode: hooks"
                )
            self._captures[name] = _Capture(
                inputs[0].detach(), inputs[0]._version, output, output._version
            )

        return hook

    def clipped_sum(
        self, loss_sum: torch.Tensor, max_grad_norm: float
    ) -> tuple[dict[nn.Parameter, torch.Tensor], torch.Tensor]:
        """``sum_i c_i g_i`` for each trainable parameter, and the per-example norms ``||g_i||``.

        ``loss_sum`` is the *sum* of the batch's per-example losses, so that each backprop row is
        one example's gradient. The clip factor is Opacus's: ``min(1, C / (||g_i|| + 1e-6))``.
        """
        captures, self._captures = self._captures, {}
        missing = [name for name, _, _ in self._layers if name not in captures]
        if missing:
            raise ModelError(
                f"layer '{missing[0]}' did not run in the forward pass; per-example clipping "
                "needs every trainable layer to run: set training.dp.grad_sample_mode: hooks"
            )
        for name, capture in captures.items():
            if (capture.output._version, capture.activation._version) != (
                capture.output_version, capture.activation_version
            ):
                raise ModelError(
                    f"the input or output of layer '{name}' was changed in place (an inplace "
                    "activation?); use inplace=False or set training.dp.grad_sample_mode: hooks"
                )
        ordered = [captures[name] for name, _, _ in self._layers]
        backprops = torch.autograd.grad(
            loss_sum, [capture.output for capture in ordered], allow_unused=True
        )
        pieces = []
        batch = len(ordered[0].activation)
        squared = torch.zeros(batch, device=loss_sum.device, dtype=loss_sum.dtype)
        for (_, module, rule), capture, backprop in zip(
            self._layers, ordered, backprops, strict=True
        ):
            if backprop is None:
                backprop = torch.zeros_like(capture.output)
            for parameter_name, gradients in rule(module, capture.activation, backprop).items():
                squared += gradients.squared_norms
                pieces.append((getattr(module, parameter_name), gradients))
        norms = squared.sqrt()
        scale = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        sums = {
            parameter: gradients.weighted_sum(scale).view_as(parameter)
            for parameter, gradients in pieces
        }
        return sums, norms

    def discard(self) -> None:
        """Forget what the last forward pass captured (for a forward without a DP step)."""
        self._captures = {}

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> PerExampleClipper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
