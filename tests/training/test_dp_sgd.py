"""The fast DP-SGD path computes Opacus's clipped, noised gradient, and its accountant's ε."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch
from opacus import GradSampleModule
from opacus.accountants import create_accountant
from opacus.optimizers import DPOptimizer
from torch import nn

from auditml.config import DPConfig
from auditml.errors import ModelError
from auditml.training.dp_sgd import FastDPSGD, make_private
from auditml.training.grad_sample_choice import candidate_modes
from auditml.training.per_example import fast_path_problems
from auditml.training.privacy import NoisePlan


def _conv_net(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(seed)
    # im2col (2 input channels), shifted products with dilation (6), im2col with stride 2.
    return nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(),
        nn.Conv2d(6, 5, (2, 3), padding=(1, 2), dilation=(2, 2)), nn.ReLU(),
        nn.Conv2d(5, 4, 3, stride=2), nn.GroupNorm(2, 4),
        nn.Flatten(), nn.LazyLinear(6), nn.Tanh(), nn.Linear(6, 4),
    ), (2, 9, 9)


def _late_conv_net(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(seed)
    # Few positions, many weights: ghost norms (2 T^2 <= d p), dilated, then with stride 2.
    return nn.Sequential(
        nn.Conv2d(16, 12, 3, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(12, 8, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(32, 4),
    ), (16, 4, 4)


def _short_sequence_net(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(seed)
    # 3 steps of 7 features: the ghost norm is cheaper (2 * 3^2 <= 7 * 6).
    return nn.Sequential(
        nn.Linear(7, 6), nn.LayerNorm(6), nn.ReLU(), nn.Flatten(), nn.Linear(18, 4),
    ), (3, 7)


def _long_sequence_net(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(seed)
    # 7 steps of 3 features: per-example gradients are formed (2 * 7^2 > 3 * 5).
    return nn.Sequential(
        nn.Linear(3, 5, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(35, 4),
    ), (7, 3)


def _mlp(seed: int) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 4)), (10,)


NETWORKS = [_conv_net, _late_conv_net, _short_sequence_net, _long_sequence_net, _mlp]


def _materialise(model: nn.Module, shape: tuple[int, ...]) -> None:
    with torch.no_grad():
        model(torch.zeros(1, *shape))  # LazyLinear takes its shape here


def _opacus_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sigma: float, clip: float,
    expected: int, noise_seed: int,
) -> list[torch.Tensor]:
    wrapped = GradSampleModule(model)
    optimizer = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.0), noise_multiplier=sigma,
        max_grad_norm=clip, expected_batch_size=expected,
    )
    nn.functional.cross_entropy(wrapped(x), y).backward()
    torch.manual_seed(noise_seed)
    optimizer.pre_step()
    gradients = [p.grad.detach().clone() for p in model.parameters()]
    wrapped.remove_hooks()
    return gradients


def _fast_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, sigma: float, clip: float,
    expected: int, noise_seed: int,
) -> list[torch.Tensor]:
    dp = FastDPSGD(
        model, torch.optim.SGD(model.parameters(), lr=0.0), noise_multiplier=sigma,
        max_grad_norm=clip, expected_batch_size=expected,
    )
    loss_sum = nn.functional.cross_entropy(model(x), y, reduction="sum")
    torch.manual_seed(noise_seed)
    dp.clipped_noised_gradients(loss_sum, len(y))
    dp.close()
    return [p.grad.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sigma", [0.0, 1.3])
@pytest.mark.parametrize("clip", [0.05, 100.0])  # every example clipped / none clipped
def test_fast_path_equals_opacus(
    network: Callable[[int], tuple[nn.Module, tuple[int, ...]]], seed: int, sigma: float,
    clip: float,
) -> None:
    model, shape = network(seed)
    _materialise(model, shape)
    generator = torch.Generator().manual_seed(100 + seed)
    batch = 5 + seed * 6
    x = torch.randn(batch, *shape, generator=generator) * 3
    y = torch.randint(0, 4, (batch,), generator=generator)
    reference_model, _ = network(seed)
    _materialise(reference_model, shape)
    reference_model.load_state_dict(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_grads = _opacus_gradients(
            reference_model, x, y, sigma=sigma, clip=clip, expected=8, noise_seed=seed
        )
    fast_grads = _fast_gradients(model, x, y, sigma=sigma, clip=clip, expected=8, noise_seed=seed)
    assert len(fast_grads) == len(expected_grads)
    for fast, expected in zip(fast_grads, expected_grads, strict=True):
        scale = expected.abs().max().clamp(min=1e-12)
        assert (fast - expected).abs().max() / scale < 1e-5


def test_every_clipped_norm_is_at_most_the_bound() -> None:
    model, shape = _conv_net(3)
    _materialise(model, shape)
    dp = FastDPSGD(
        model, torch.optim.SGD(model.parameters(), lr=0.0), noise_multiplier=0.0,
        max_grad_norm=0.1, expected_batch_size=1,
    )
    norms = []
    for i in range(4):  # one example per batch: the "sum" is that example's clipped gradient
        x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(i)) * 10
        dp.clipped_noised_gradients(
            nn.functional.cross_entropy(model(x), torch.tensor([i]), reduction="sum"), 1
        )
        norms.append(torch.cat([p.grad.flatten() for p in model.parameters()]).norm())
    dp.close()
    assert all(n <= 0.1 * (1 + 1e-5) for n in norms) and max(norms) > 0.099


def test_an_empty_batch_adds_only_noise() -> None:
    model, shape = _mlp(0)
    dp = FastDPSGD(
        model, torch.optim.SGD(model.parameters(), lr=0.0), noise_multiplier=0.0,
        max_grad_norm=1.0, expected_batch_size=4,
    )
    x = torch.zeros(0, *shape)
    dp.clipped_noised_gradients(model(x).sum() * 0.0, 0)
    assert all(torch.count_nonzero(p.grad) == 0 for p in model.parameters())
    dp.close()


def test_auto_considers_the_fast_path_only_when_it_covers_every_layer() -> None:
    model, _ = _mlp(0)
    assert candidate_modes(model) == ["fast", "hooks", "ghost"]
    embedding = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 2))
    assert candidate_modes(embedding) == ["hooks", "ghost"]
    assert fast_path_problems(embedding) == ["Embedding at '0' has no per-example rule"]
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2))
    assert fast_path_problems(grouped) == ["Conv2d at '0' (groups=2)"]
    with pytest.raises(ModelError, match=r"Embedding at '0' has no per-example rule.*auto"):
        FastDPSGD(
            embedding, torch.optim.SGD(embedding.parameters(), lr=0.1), noise_multiplier=1.0,
            max_grad_norm=1.0, expected_batch_size=2,
        )
    frozen = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 2))
    frozen[0].weight.requires_grad_(False)
    assert fast_path_problems(frozen) == []


def _loader(examples: int, batch_size: int, seed: int) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(seed)
    data = torch.utils.data.TensorDataset(
        torch.randn(examples, 10, generator=generator), torch.randint(0, 4, (examples,))
    )
    return torch.utils.data.DataLoader(
        data, batch_size=batch_size, generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
def test_fast_and_opacus_training_agree_and_spend_the_same_epsilon(accountant: str) -> None:
    dp = DPConfig(enabled=True, noise_multiplier=0.8, accountant=accountant, delta=1e-3)
    plan = NoisePlan(noise_multiplier=0.8, sample_rate=0.25, steps=12, calibrated=False)
    finals, epsilons = {}, {}
    for mode in ["fast", "hooks"]:
        torch.manual_seed(7)
        model, _ = _mlp(7)
        private = make_private(
            model, torch.optim.SGD(model.parameters(), lr=0.5), _loader(64, 16, 3),
            plan=plan, dp=dp, mode=mode,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(3):
                for x, y in private.loader:
                    private.step(x, y)
        epsilons[mode] = private.epsilon(dp.delta)
        private.close()
        finals[mode] = torch.cat([p.detach().flatten() for p in model.parameters()])
    reference = create_accountant(mechanism=accountant)
    for _ in range(12):
        reference.step(noise_multiplier=0.8, sample_rate=0.25)
    assert epsilons["fast"] == epsilons["hooks"] == reference.get_epsilon(delta=1e-3)
    assert torch.allclose(finals["fast"], finals["hooks"], rtol=1e-4, atol=1e-5)


class _Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(self.layer(x))


class _InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x).relu_()


@pytest.mark.parametrize(
    ("model", "message"), [(_Shared(), "ran twice"), (_InPlace(), "changed in place")]
)
def test_what_the_fast_path_cannot_clip_is_refused_with_the_way_out(
    model: nn.Module, message: str
) -> None:
    dp = FastDPSGD(
        model, torch.optim.SGD(model.parameters(), lr=0.0), noise_multiplier=0.0,
        max_grad_norm=1.0, expected_batch_size=2,
    )
    with pytest.raises(ModelError, match=f"{message}.*grad_sample_mode: hooks"):
        loss = model(torch.randn(2, 4)).sum()
        dp.clipped_noised_gradients(loss, 2)
    dp.close()
