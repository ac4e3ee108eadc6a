"""Many models of one architecture trained as one computation (``torch.func`` + ``vmap``).

Reference and shadow models differ from one another only in their data subset and seed, so K of
them can share every kernel: their parameters are stacked along a new leading dimension
(``stack_module_state``) and one ``vmap``-ed ``functional_call`` runs all K forward and backward
passes at once. Without DP-SGD the K losses are summed and one backward gives each model its own
gradient; with DP-SGD each example's gradient norm comes from ``vmap(grad)`` over models and
examples. On the CPU the models' passes run in a loop instead (``vectorize``), on their real rows
with the kernels a model alone runs: there a ``vmap``-ed convolution becomes a grouped one plus
layout copies, slower than K plain ones (``benchmarks/batched_training.py``); with DP-SGD each
model's clipped sum there comes from the single-model fast path's per-layer rules (one forward,
one backward to the layers' outputs), the ``vmap(grad)`` norms being the fallback for layers
they do not cover. Everything else (data, noise, optimiser) stays one computation.

The mechanism is, per model, exactly the one :func:`auditml.training.trainer.fit_model` runs
for that model's seed (``tests/training/test_batched.py`` checks both side by side):

* the same initial weights (the model is built after ``torch.manual_seed(seed)``, as alone);
* the same batches: each model iterates its own real ``DataLoader`` (or Opacus's Poisson
  ``DPDataLoader``) over its subset with ``Generator().manual_seed(seed)``, so the shuffles and
  Poisson masks are the very draws the model would see alone;
* the same clipping: ``min(1, C / (||g_i|| + 1e-6))`` with ``||g_i||`` over all parameters;
* the same noise: each model has its own generator, holding the global RNG state the model alone
  would have after its initialisation, and draws ``N(0, (sigma C)^2)`` parameter by parameter in
  optimiser order (what Opacus and the fast path do with the global RNG);
* the same division by the expected batch size and the same optimiser: torch's SGD, Adam and
  AdamW act element by element, so one optimiser over the stacked tensors is K optimisers.

Models whose subsets give different numbers of batches per epoch (a different schedule, and for
a calibrated ε a different σ) are trained in separate groups. Only floating point differs from
training alone: the clipped sum is taken as the gradient of ``sum_i c_i L_i`` (exactly
``sum_i c_i g_i``) and batched kernels sum in another order, so weights agree to about 1e-6
relative per step.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from opacus.data_loader import DPDataLoader
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap
from torch.utils.data import DataLoader, TensorDataset

from auditml.config import AuditMLConfig, DPConfig
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError
from auditml.models import build_model
from auditml.training.per_example import PerExampleClipper, covered_layers, fast_path_problems
from auditml.training.privacy import plan_noise, prepare_for_dp
from auditml.training.recipe import lr_schedule

Weights = dict[str, np.ndarray]
Parameters = dict[str, torch.Tensor]
# (inputs (K, B, ...), labels (K, B), mask (K, B)) -> one optimiser step of all K models.
Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]
# (one model's parameters, its inputs (B, ...), its labels (B,)) -> one number per example.
PerModel = Callable[[Parameters, torch.Tensor, torch.Tensor], torch.Tensor]

# Per-example gradients are formed for this many bytes at a time (examples x models x
# parameters x 4); larger batches are clipped in slices, so memory does not grow with the batch.
PER_EXAMPLE_BYTES = {"cpu": 256 * 2**20, "cuda": 4 * 2**30}


def train_batched(
    config: AuditMLConfig,
    pool: ArrayDataset,
    subsets: Sequence[np.ndarray],
    seeds: Sequence[int],
    *,
    device: torch.device,
    vectorize: bool | None = None,
) -> list[Weights]:
    """Train one model of ``config``'s recipe on ``pool[subsets[k]]`` with ``seeds[k]`` for each
    k, all at once; their weights (state dicts as numpy arrays) in the same order.

    ``vectorize`` runs the models' passes as one ``vmap`` (default: off the CPU, where it pays;
    see :meth:`_BatchedFit._over_models`). The caller checks
    :func:`auditml.training.batched_jobs.why_not_batched` first.
    """
    if len(subsets) != len(seeds):
        raise AuditMLError(f"train_batched: {len(subsets)} subsets but {len(seeds)} seeds")
    from auditml.training.trainer import _silence_library_notices

    results: list[Weights | None] = [None] * len(seeds)
    for group in _same_schedule_groups(config, [len(s) for s in subsets]):
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            _silence_library_notices()
            trained = _BatchedFit(
                config, pool, [subsets[k] for k in group], [seeds[k] for k in group], device,
                device.type != "cpu" if vectorize is None else vectorize,
            ).run()
        for k, weights in zip(group, trained, strict=True):
            results[k] = weights
    return [weights for weights in results if weights is not None]


def _same_schedule_groups(config: AuditMLConfig, sizes: Sequence[int]) -> list[list[int]]:
    """Positions grouped by batches per epoch (what fixes a model's steps and its σ)."""
    groups: dict[int, list[int]] = {}
    for position, size in enumerate(sizes):
        groups.setdefault(-(-size // config.data.batch_size), []).append(position)
    return list(groups.values())


class _BatchedFit:
    """K models of one schedule: stacked parameters, one optimiser, one loader per model."""

    def __init__(
        self,
        config: AuditMLConfig,
        pool: ArrayDataset,
        subsets: Sequence[np.ndarray],
        seeds: Sequence[int],
        device: torch.device,
        vectorized: bool,
    ) -> None:
        from auditml.training.trainer import make_optimizer

        self.config, self.device, self.vectorized = config, device, vectorized
        self.dp = config.training.dp if config.training.dp.enabled else None
        models = [self._initial_model(seed) for seed in seeds]
        # The RNG state each model's own run would hold after initialisation: its noise stream.
        self.noise_generators = [
            self._noise_generator(seed, state)
            for seed, (_, state) in zip(seeds, models, strict=True)
        ]
        self.template = models[0][0]
        stacked, _ = stack_module_state([model for model, _ in models])
        self.parameters: Parameters = {
            name: tensor.detach().clone().requires_grad_(True) for name, tensor in stacked.items()
        }
        self.optimizer = make_optimizer(config, list(self.parameters.values()))
        self.pool_x = torch.from_numpy(pool.x).to(device)
        self.pool_y = torch.from_numpy(pool.y).to(device)
        self.rows = [torch.as_tensor(np.asarray(s), dtype=torch.long) for s in subsets]
        self.loaders = [self._loader(len(s), seed) for s, seed in zip(subsets, seeds, strict=True)]
        self._close: Callable[[], None] = lambda: None  # hooks to remove when training ends

    def _initial_model(self, seed: int) -> tuple[nn.Module, torch.Tensor]:
        """The model ``fit_model`` would start from, and the global RNG state after building it."""
        torch.manual_seed(seed)
        spec = self.config.dataset_spec
        model = build_model(self.config.arch, spec.input_shape, spec.num_classes)
        if self.dp is not None:
            model = prepare_for_dp(model, fix=self.dp.fix_model, report=lambda _: None)
        return model.to(self.device), torch.get_rng_state()

    def _noise_generator(self, seed: int, cpu_state: torch.Tensor) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        if self.device.type == "cpu":
            generator.set_state(cpu_state)
        else:
            # Alone, the model is built on the CPU, so its device generator is freshly seeded.
            generator.manual_seed(seed)
        return generator

    def _loader(self, size: int, seed: int) -> DataLoader:
        """The loader ``fit_model`` builds, over positions in the subset instead of examples
        (the dataset's contents do not touch the RNG; only its length does)."""
        loader = DataLoader(
            TensorDataset(torch.arange(size)), batch_size=self.config.data.batch_size,
            shuffle=True, generator=torch.Generator().manual_seed(seed),
        )
        return DPDataLoader.from_data_loader(loader) if self.dp is not None else loader

    def run(self) -> list[Weights]:
        step = self._plain_step if self.dp is None else self._private_step(self.dp)
        try:
            self._epochs(step)
        finally:
            self._close()
        return [
            {name: tensor[k].detach().cpu().numpy() for name, tensor in self.parameters.items()}
            for k in range(len(self.loaders))
        ]

    def _epochs(self, step: Step) -> None:
        epochs = self.config.training.epochs
        schedule = lr_schedule(self.optimizer, self.config, epochs * len(self.loaders[0]))
        for _ in range(epochs):
            iterators = [iter(loader) for loader in self.loaders]
            for _ in range(len(self.loaders[0])):
                step(*self._batch([next(iterator)[0] for iterator in iterators]))
                if schedule is not None:
                    schedule.step()
            for iterator in iterators:
                # Exhaust each loader as a for loop would: a shuffling sampler draws once more
                # when it is exhausted, and that draw shapes the model's next epoch.
                if next(iterator, None) is not None:
                    raise AuditMLError("batched training: loaders of one group differ in length")

    def _batch(self, positions: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Each model's batch padded to the longest: inputs, labels and a 0/1 mask ``(K, B)``."""
        width = max(1, *(len(p) for p in positions))
        rows = torch.zeros(len(positions), width, dtype=torch.long)
        mask = torch.zeros(len(positions), width)
        for k, chosen in enumerate(positions):
            rows[k, : len(chosen)] = self.rows[k][chosen]
            mask[k, : len(chosen)] = 1.0
        rows, mask = rows.to(self.device), mask.to(self.device)
        return self.pool_x[rows], self.pool_y[rows], mask

    def _over_models(self, fn: PerModel, parameters: Parameters, x: torch.Tensor,
                     y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``fn(parameters[k], x[k], y[k])`` for every model k, as ``(K, B)``.

        Vectorised, one ``vmap`` over the models. Otherwise (the CPU) a loop over the models
        on each one's real rows, with the plain kernels a model trained alone runs: there a
        ``vmap``-ed convolution becomes a grouped one plus layout copies, slower than K
        separate convolutions, and the padding is work for nothing.
        """
        if self.vectorized:
            return vmap(fn)(parameters, x, y)
        rows = mask.sum(1).long().tolist()
        unbound = [parameter.unbind(0) for parameter in parameters.values()]
        results = []
        for k, count in enumerate(rows):
            own = {name: values[k] for name, values in zip(parameters, unbound, strict=True)}
            result = fn(own, x[k, :count], y[k, :count]) if count else x.new_zeros(0)
            results.append(nn.functional.pad(result, (0, x.shape[1] - count)))
        return torch.stack(results)

    def _example_losses(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
                        ) -> torch.Tensor:
        """Each model's loss on each example of its batch, ``(K, B)`` (0 on padding)."""
        def losses(own: Parameters, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            logits = functional_call(self.template, own, (inputs,))
            return nn.functional.cross_entropy(logits, labels, reduction="none")

        return self._over_models(losses, self.parameters, x, y, mask) * mask

    def _plain_step(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> None:
        """Each model's mean loss over its own batch; their sum has each model's gradient."""
        losses = self._example_losses(x, y, mask)
        self.optimizer.zero_grad(set_to_none=True)
        (losses.sum(1) / mask.sum(1)).sum().backward()
        self.optimizer.step()

    def _private_step(self, dp: DPConfig) -> Step:
        plan = plan_noise(dp, batches_per_epoch=len(self.loaders[0]),
                          epochs=self.config.training.epochs)
        std = plan.noise_multiplier * dp.max_grad_norm
        # Opacus divides by int(n q) with q = 1 / len(Poisson loader), for each model's own n.
        expected = torch.tensor(
            [int(len(loader.dataset) * (1 / len(loader))) for loader in self.loaders],  # type: ignore[arg-type]
            dtype=torch.float32, device=self.device,
        )

        clipper = None if self.vectorized else self._layer_clipper()
        self._close = clipper.close if clipper is not None else self._close

        def step(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> None:
            self.optimizer.zero_grad(set_to_none=True)
            if clipper is not None:
                sums = self._looped_clipped_sums(clipper, dp.max_grad_norm, x, y, mask)
            else:
                norms = self._per_example_norms(x, y, mask)
                scale = (dp.max_grad_norm / (norms + 1e-6)).clamp(max=1.0) * mask
                # d/dθ sum_i c_i L_i = sum_i c_i g_i: the clipped sum in one ordinary backward.
                (self._example_losses(x, y, mask) * scale).sum().backward()
                sums = {name: p.grad for name, p in self.parameters.items()}
            noise = self._noise(std)
            for name, parameter in self.parameters.items():
                summed = sums[name]
                if summed is None:  # a parameter the loss does not reach: Opacus sums zeros
                    summed = torch.zeros_like(parameter)
                if noise:
                    summed = summed + noise[name]
                parameter.grad = summed / expected.view(-1, *[1] * (summed.dim() - 1))
            self.optimizer.step()

        return step

    def _layer_clipper(self) -> PerExampleClipper | None:
        """The single-model trainer's per-layer clipping on the template, where its rules cover
        every trainable layer (None: the ``vmap(grad)`` norms instead)."""
        if fast_path_problems(self.template):
            return None
        return PerExampleClipper(self.template, covered_layers(self.template))

    def _looped_clipped_sums(self, clipper: PerExampleClipper, max_grad_norm: float,
                             x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> Parameters:
        """``sum_i c_i g_i`` of each model, stacked ``(K, ...)``, as the fast path computes it
        alone: a forward of the template with the model's parameters (its hooks capture each
        layer), then one backward to the layers' outputs and the layers' rules. On the CPU this
        is one forward and one backward per model, where the ``vmap(grad)`` norms cost a second
        of each plus per-example gradients."""
        rows = mask.sum(1).long().tolist()
        names = {parameter: name for name, parameter in self.template.named_parameters()}
        unbound = {name: parameter.unbind(0) for name, parameter in self.parameters.items()}
        sums: dict[str, list[torch.Tensor]] = {name: [] for name in self.parameters}
        for k, count in enumerate(rows):
            found: dict[str, torch.Tensor] = {}
            if count:
                own = {name: values[k] for name, values in unbound.items()}
                logits = functional_call(self.template, own, (x[k, :count],))
                loss_sum = nn.functional.cross_entropy(logits, y[k, :count], reduction="sum")
                clipped, _ = clipper.clipped_sum(loss_sum, max_grad_norm)
                found = {names[parameter]: value for parameter, value in clipped.items()}
            for name, values in unbound.items():
                sums[name].append(found[name] if name in found else torch.zeros_like(values[k]))
        return {name: torch.stack(values) for name, values in sums.items()}

    def _per_example_norms(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
                           ) -> torch.Tensor:
        """``||g_ki||`` over all parameters for model k and example i, ``(K, B)``."""
        detached = {name: p.detach() for name, p in self.parameters.items()}

        def example_loss(own: Parameters, inputs: torch.Tensor, label: torch.Tensor
                         ) -> torch.Tensor:
            logits = functional_call(self.template, own, (inputs.unsqueeze(0),))
            return nn.functional.cross_entropy(logits, label.unsqueeze(0), reduction="sum")

        per_example = vmap(grad(example_loss), in_dims=(None, 0, 0))

        def squared_norms(own: Parameters, inputs: torch.Tensor, labels: torch.Tensor
                          ) -> torch.Tensor:
            gradients = per_example(own, inputs, labels).values()
            return torch.stack([
                torch.linalg.vector_norm(g.flatten(1), dim=-1).square() for g in gradients
            ]).sum(0)

        # Vectorised, a slice holds every model's per-example gradients; looped, one model's.
        slice_size = self._examples_per_slice(x.shape[0] if self.vectorized else 1)
        norms = [
            self._over_models(squared_norms, detached, x[:, start:start + slice_size],
                              y[:, start:start + slice_size], mask[:, start:start + slice_size])
            for start in range(0, x.shape[1], slice_size)
        ]
        return torch.cat(norms, dim=1).sqrt()

    def _examples_per_slice(self, models: int) -> int:
        size = sum(p[0].numel() for p in self.parameters.values())
        budget = PER_EXAMPLE_BYTES.get(self.device.type, PER_EXAMPLE_BYTES["cpu"])
        return max(1, budget // (4 * size * models))

    def _noise(self, std: float) -> Parameters:
        """Each model's noise, drawn from its own generator as ``FastDPSGD`` draws it alone."""
        if std <= 0:
            return {}
        draws: dict[str, list[torch.Tensor]] = {name: [] for name in self.parameters}
        for generator in self.noise_generators:
            for name, parameter in self.parameters.items():
                draws[name].append(torch.normal(
                    mean=0, std=std, size=parameter.shape[1:], device=self.device,
                    generator=generator,
                ))
        return {name: torch.stack(values) for name, values in draws.items()}

