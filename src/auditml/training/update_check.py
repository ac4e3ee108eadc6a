"""The check that training really changed the model: its trainable tensors moved and stayed finite.

Run after a run's first steps (:func:`auditml.training.trainer.fit_model`), for every model; it
exists because DP-LoRA fine-tuning can fail silently (Opacus issue 820): the loss falls and ε
accrues while the adapters of the model that is evaluated and saved never change.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from auditml.errors import TrainingError


def snapshot_trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every trainable tensor of ``model``, by name, to compare after training steps
    with :func:`check_trained_weights`. Take it from the model that will be evaluated and saved."""
    return {
        name: param.detach().clone()
        for name, param in model.named_parameters() if param.requires_grad
    }


def check_trained_weights(
    before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], *, where: str,
    model: nn.Module | None = None,
) -> None:
    """Raise :class:`TrainingError` unless training really changed the model: the trainable set
    is non-empty and the same, at least one trainable tensor moved, and every tensor is finite.

    ``before`` and ``after`` are :func:`snapshot_trainable` of the model before and after the first
    steps; ``where`` says which run or step (it starts the message). With ``model``, its frozen
    parameters and buffers are checked finite too.

    The failure it exists for is Opacus issue 820 (DP-LoRA with ``peft``): training looks normal —
    the loss falls and ε accrues — but the adapters of the model that is evaluated and saved
    never change, because the optimizer and Opacus's hooks were set up on parameter objects the
    model no longer uses (the model was moved, re-materialised or wrapped after them). Opacus 1.6
    itself refuses the forms where the model's own parameters are replaced (``make_private``
    compares the optimizer's parameters with the module's, and its hooks fail on a parameter they
    did not set up); the form it cannot see, and this check does, is a model kept for evaluation
    and saving that does not hold the tensors that were trained.
    """
    if not before:
        raise TrainingError(
            f"{where}: the model has no trainable tensor, so training cannot change it; "
            "leave some parameters with requires_grad=True (with LoRA: the adapters)"
        )
    if set(before) != set(after):
        changed = sorted(set(before) ^ set(after))
        raise TrainingError(
            f"{where}: the set of trainable tensors changed during training ({len(changed)} "
            f"differ, e.g. {changed[0]!r}); set up the optimizer and Opacus after the model is "
            "complete (LoRA added, on its device) and do not change its parameters afterwards"
        )
    for name, tensor in after.items():
        if not torch.isfinite(tensor).all():
            raise TrainingError(
                f"{where}: the trainable tensor {name!r} holds non-finite values (inf or nan) "
                "after training steps; lower the learning rate or set a max_grad_norm"
            )
    if model is not None:
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise TrainingError(
                    f"{where}: the model's tensor {name!r} holds non-finite values (inf or nan); "
                    "check the model's weights before training"
                )
    if all(torch.equal(before[name], after[name].to(before[name].device)) for name in before):
        raise TrainingError(
            f"{where}: none of the model's {len(before)} trainable tensors changed after "
            "training steps, so the trained model would be the untrained one (Opacus issue "
            "820: the optimizer updates tensors the model does not use); build the optimizer "
            "and call make_private after the model is complete (LoRA added, on its device), "
            "and save that same model"
        )
