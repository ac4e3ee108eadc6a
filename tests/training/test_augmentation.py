"""Augmentation multiplicity: the copies are shifts of their example, each example's gradient is
the mean of its copies' gradients *before* clipping (checked against a step computed by hand),
and the mechanism (σ, q, steps, ε) is the run's without copies."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from auditml.config import DPConfig, parse_config
from auditml.errors import ConfigError
from auditml.run_directory import RunDirectory
from auditml.training import build_run_model, train
from auditml.training.augmentation import average_copies, max_shift, shifted_copies
from auditml.training.batched_jobs import why_not_batched
from auditml.training.dp_sgd import make_private
from auditml.training.privacy import NoisePlan

DP = {"enabled": True, "epsilon": 3.0, "delta": 1e-3}


def _shift(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``image`` (C, H, W) moved down by dy and right by dx, zeros where it uncovers."""
    out = torch.zeros_like(image)
    _, height, width = image.shape
    out[:, max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = image[
        :, max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def test_each_copy_is_a_shift_of_its_own_example() -> None:
    x = torch.randn(5, 2, 8, 8)
    copies = shifted_copies(x, 6, torch.Generator().manual_seed(0))
    assert copies.shape == (30, 2, 8, 8)
    s = max_shift(8)
    seen = set()
    for row, image in enumerate(copies):
        matches = [(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1)
                   if torch.equal(image, _shift(x[row // 6], dy, dx))]
        assert matches, f"copy {row} is no shift of example {row // 6}"
        seen.add(matches[0])
    assert len(seen) > 3  # the shifts vary
    again = shifted_copies(x, 6, torch.Generator().manual_seed(0))
    assert torch.equal(copies, again)  # the generator alone decides
    assert max_shift(28) == 2 and max_shift(8) == 1
    with pytest.raises(ValueError, match="images"):
        shifted_copies(torch.randn(3, 10), 2, torch.Generator())


def test_copies_are_averaged_per_example() -> None:
    p = nn.Parameter(torch.zeros(2))
    p.grad_sample = torch.arange(12.0).view(6, 2)  # type: ignore[attr-defined]
    average_copies([p], 3)
    assert torch.equal(p.grad_sample, torch.tensor([[2.0, 3.0], [8.0, 9.0]]))  # type: ignore[attr-defined]
    p.grad_sample = torch.zeros(5, 2)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="whole groups"):
        average_copies([p], 3)


def test_one_step_is_the_clipped_sum_of_each_examples_mean_gradient() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    before = copy.deepcopy(model)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,))
    loader = DataLoader(TensorDataset(x, y), batch_size=4)  # q = 1/2, expected batch 4
    clip, copies = 0.5, 3
    private = make_private(
        model, torch.optim.SGD(model.parameters(), lr=1.0), loader,
        plan=NoisePlan(noise_multiplier=0.0, sample_rate=0.5, steps=1, calibrated=False),
        dp=DPConfig(enabled=True, noise_multiplier=1.0, max_grad_norm=clip), mode="hooks",
        copies=copies, augment_seed=7,
    )
    private.step(x[:4], y[:4])
    private.close()
    # By hand: the same shifts, each example's mean gradient over its copies, clipped, summed.
    shifted = shifted_copies(x[:4], copies, torch.Generator().manual_seed(7))
    total = [torch.zeros_like(p) for p in before.parameters()]
    for i in range(4):
        before.zero_grad()
        logits = before(shifted[i * copies:(i + 1) * copies])
        nn.functional.cross_entropy(logits, y[i].repeat(copies)).backward()  # mean over copies
        grads = [p.grad.clone() for p in before.parameters()]  # type: ignore[union-attr]
        norm = torch.sqrt(sum((g * g).sum() for g in grads))
        assert norm > clip  # clipping binds: averaging after it would give another step
        for t, g in zip(total, grads, strict=True):
            t += g * min(1.0, clip / (float(norm) + 1e-6))
    for new, old, t in zip(model.parameters(), before.parameters(), total, strict=True):
        assert torch.allclose(new.detach(), old.detach() - t / 4, atol=1e-6)


def test_multiplicity_is_refused_where_it_cannot_run(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    copies = {**DP, "recipe": {"augmentation_multiplicity": 4}}
    with pytest.raises(ConfigError, match=r"augmentation_multiplicity.*not images"):
        parse_config(tiny_config(data={"dataset": "diabetes", "train_size": 100},
                                 model={"arch": "mlp_tabular"}, training={"dp": copies}))
    with pytest.raises(ConfigError, match="grad_sample_mode: hooks"):
        parse_config(tiny_config(training={"dp": {**copies, "grad_sample_mode": "fast"}}))
    config = parse_config(tiny_config(training={"dp": copies}))
    assert "augmentation multiplicity" in str(why_not_batched(config))


@pytest.mark.slow
def test_copies_change_the_model_not_the_mechanism(
    tiny_config: Callable[..., dict[str, Any]],
) -> None:
    results = {}
    for copies in (1, 2):
        raw = tiny_config(experiment_name=f"copies{copies}", training={
            "dp": {**DP, "grad_sample_mode": "hooks",
                   "recipe": {"augmentation_multiplicity": copies}}})
        result = train(parse_config(raw), console=Console(file=io.StringIO()))
        model = build_run_model(parse_config(raw))
        model.load_state_dict(RunDirectory(result.run_dir).read_model_state())
        results[copies] = (result.metrics, [p.detach().clone() for p in model.parameters()])
    (one, plain_weights), (two, copied_weights) = results[1], results[2]
    for key in ["epsilon", "noise_multiplier", "sample_rate", "steps"]:
        assert one[key] == two[key]
    assert two["recipe"]["augmentation_multiplicity"] == 2 and two["grad_sample_mode"] == "hooks"
    assert any(not torch.equal(a, b) for a, b in zip(plain_weights, copied_weights, strict=True))
