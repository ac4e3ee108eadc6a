"""The DP training recipe: what training does differently when DP-SGD is on (issue 12).

DP-SGD clips each example's gradient and adds noise of the same size to every parameter, for a
few hundred steps. A recipe tuned without DP wastes that budget. The parts below change the
model, the optimiser, which weights are released, and (``schedule``) the batch size, epochs and
clipping norm; σ is calibrated for the schedule that runs, so the accountant's ε is the same
with and without them. Each part is set in
``training.dp.recipe`` (:class:`auditml.config.DPRecipeConfig`), and ``metrics.json`` records
what a run used.

Measured with ``benchmarks/dp_recipe_probe.py`` on the seed's DP tutorial configs with
Fashion-MNIST (5,000 members, batch 256, 20 epochs, σ calibrated by PRV; one seed; validation
accuracy on the 10,000 test images), and on the demo's digits configs (150 members, batch 50,
30 epochs; mean of 3 seeds):

==========================================  =========  =========
Fashion-MNIST                                ε=1        ε=5
==========================================  =========  =========
plain: cnn_28x28, Adam lr 1e-3               66.6       76.0
Adam lr 3e-3                                 76.4       80.6
GroupNorm + Adam lr 3e-3 (the recipe)        78.4       82.3
GroupNorm + tanh + Adam lr 3e-3              76.8       81.5
EMA of the weights (decay 0.99-0.999)        -2 to +1   -1 to +0.3
the recipe + cosine schedule, peak lr 3e-3   77.6
the recipe at lr 6e-3, constant / cosine     76.2/78.6
the recipe + augmentation multiplicity K=4   76.2
==========================================  =========  =========

==========================================  =========  =========
digits                                       ε=1        ε=5
==========================================  =========  =========
plain: cnn_8x8, Adam lr 1e-2                 20.0       73.3
cnn_8x8 + GroupNorm                          23.8       67.4
a linear model                               32.5       78.7
32 tanh units                                41.6       72.9
mlp_small_tanh, 64 tanh units (the recipe)   41.5       75.7
the recipe + cosine schedule                 32.6       71.1
==========================================  =========  =========

(The schedule and multiplicity rows: ``auditml train`` itself, one seed on Fashion-MNIST, where
the recipe measured 78.35 at constant lr 3e-3 in the same session; seeds 0-2 on digits, where it
measured 41.5 / 75.7 again.)

On issue 28's MNIST proxy (3,500 members; the seed's eps1/eps5 configs, one seed;
``benchmarks/dp_recipe.py --dataset mnist-proxy``), ``scatternet_linear`` with its schedule
against ``cnn_28x28_gn`` with the config's: ε=1 94.5 against 88.9, ε=5 96.0 against 94.5
(9 s against 54 s at ε=5). With the schedule by ε (:data:`SCHEDULES`), seeds 0-2: ε=1 94.9,
ε=5 96.8, against 97.3 without DP (``cnn_28x28``); Fashion-MNIST (5,000 members) ε=1 82.3,
ε=5 85.9. Without DP the same features and a linear model do better than that CNN:
scikit-learn's logistic regression on them (C 0.003-0.1, two random subsets of the size) reaches
98.4 on the proxy and 88.3 on Fashion-MNIST's 5,000, so what separates the DP runs from the
seed's figures is DP-SGD's noise at a few thousand examples. Probes at ε=5 and ε=1 that did
not narrow it (the head alone, means of seeds 0-2 unless said): schedules around the chosen
ones (batch 512-2048, 40-80 epochs, lr 1-4: -0.6 to +0.1), weight decay 1e-3 (-2.1 on Fashion
at ε=5), fewer scattering angles (L=4 or 6 at the chosen schedules: -0.1 to -1.1), only the
zeroth- and first-order channels (-1.2), and two-pixel shifted copies averaged before clipping
(augmentation multiplicity 4 and 8, seed 0: -0.7 to 0.0).

At the seed's own training size (the proxy's 5,000 of 8,000, with ``data.audit_size: 2990``;
``auditml train``, seeds 0-2, δ=2e-4): ε=1 95.4, ε=5 97.2, against 97.8 without DP. The head
alone at that size (δ=2e-4, seeds 0-2, 95.7 / 97.2 with the recipe's schedules) stayed on a
plateau under every further probe: batch 512-2048 × 10-30 epochs × lr 0.5-2 at ε=1 (best
95.7) and 1024-2048 × 40-80 × lr 1-4 at ε=5 (best 97.5, seeds 97.2-97.65); a clipping norm of
1-30 with the learning rate scaled to match (every per-example gradient is clipped at 0.1, so
the update is a mean of unit directions; a larger norm lets well-fit examples weigh less and
lost 0.2-1.7); momentum 0, 0.5 or 0.95 at the matching rate (-0.4 to +0.2); the zeroth- and
first-order channels scaled by 0.5-4 against the second-order ones (-0.5 to +0.2); an exponential
moving average of the iterates (decay 0.9-0.99) or the mean of the last half (-0.8 to +0.1); and a
fixed spatial smoothing of each noisy gradient over the 7x7 positions (a data-independent
preconditioner, free in ε; -5 to +0.1). Nor did full-batch DP gradient descent at ε=1 (no
sampling; 20-400 steps at lr 1-4: best 95.6 at 100 steps and lr 1), label smoothing 0.1 or 0.3
(-0.5 to -9), or Tramèr & Boneh's ScatterNet + CNN head (GroupNorm, a stride-2 3x3 convolution
to 16 channels, one to 32, 32 tanh units; 33k weights against the linear layer's 40k; per-example
gradients by ``torch.func``): ε=5 97.1 at 1024 / 40 / lr 2 (seeds 0-2; 94.0-97.15 for lr 1-4,
40-80 epochs, seed 0; 32 and 64 channels 97.2), ε=1 94.6 at 1024 / 20 / lr 2 (seeds 0-2; 90.1-94.9
for the other schedules, seed 0). Tramèr & Boneh's own CNN head wins only with 60,000 examples.
Fashion-MNIST's 5,000 sit on the same plateau (the head alone, δ=2e-4, seeds 0-2; the recipe's
schedules give 85.7 and 82.4 there, 85.9 and 82.3 in ``auditml train``): ε=5 85.5-85.8 for
batch 512-2048 × 40-80 epochs × lr 1-4, ε=1 81.8-82.4 for 512-2048 × 15-30 × lr 0.5-2.

Three more directions, measured at 3,500 members and δ=1e-5 with the recipe's schedules:

* A coarser scattering, J=3 (217 channels of 3x3, 1,953 features, GroupNorm 31 groups of 7).
  - The head alone on the proxy, seeds 0-9: ε=1 94.4 against J=2's 93.8 in the same probe, ε=5
    96.9 against 96.7. At 5,000 members and δ=2e-4 the gains were +0.2 and +0.2.
  - ``auditml train`` on the proxy, seeds 0-9: ε=1 94.9 against 94.7, ε=5 97.1 against 96.8.
    The paired differences are +0.22 ± 0.15 and +0.30 ± 0.12 (standard errors), at the edge of
    the seeds' noise.
  - Fashion-MNIST's 5,000 (the head alone, seeds 0-2): ε=1 80.1 against 81.6, ε=5 83.9 against
    85.5.

  A gain of a few tenths on one dataset and a loss of 1.5 points on the other, so J stays 2.
  It would not reach the goals either way.
* A log or square root of the first- and second-order coefficients before GroupNorm
  (data-independent, free in ε): log1p(S/c) for c = 1, 0.1 and 0.01, ε=1 93.7, 93.2 and 91.9;
  square root 92.4; against 93.8 without (the proxy, seeds 0-2).
* Output perturbation of L2-regularised logistic regression, the exact minimiser plus Gaussian
  noise (Chaudhuri et al. 2011; sensitivity √2/Λ for features of norm at most 1 and
  regularisation Λ on the summed loss; the analytic Gaussian mechanism), proxy, seeds 0-2, at
  Λ = 1-100. The best were ε=1 74.3 (Λ=30) and ε=5 89.8 (Λ=3). The noise lands on all 40,000
  weights at once, where DP-SGD's noise meets a training signal at every step.

DP-Adam on the head (lr 1e-3 to 3e-2) did no better than SGD with momentum. The best were ε=1
93.5 and ε=5 96.6, against 93.8 and 96.7 (seeds 0-2).

Two more, the proxy at 3,500 members, δ=1e-5 (seed 0 for the sweeps; the linear head 94.55):

* Fewer weights to noise by a learned bottleneck instead of pooling: a 1x1 convolution of the 81
  channels to k = 2-16 followed by the linear layer (0.6k-9k weights against 40k), or a head of
  k rank-one channel x position templates per class; lr 0.5-4 at the ε=1 schedule. The best
  were 92.3 (convolution, k = 16, lr 1) and 92.45 (k = 16 templates, lr 1): a non-convex head
  trains worse under the noise than the fewer weights gain.
* Predictions averaged over the test image shifted by up to one pixel (9 or 5 copies; free in
  ε): 94.07 against 94.07 at ε=1 and 96.77 against 96.75 at ε=5 (seeds 0-2). The scattering is
  already nearly invariant to such shifts.

Normalisation of the scattering features: GroupNorm without affine weights (27 groups of 3
channels), which acts on each example alone and so costs no privacy. Tramèr & Boneh's other
choice, per-channel mean and variance estimated from the training set with Gaussian noise (a
one-shot Gaussian mechanism on each example's clipped channel statistics, composed with DP-SGD;
σ=8, the statistics clipped to norm 1, DP-SGD's σ recalibrated so the total is the configured ε),
measured 94.85 against 94.55 on the MNIST proxy at ε=1 (seed 0, within the seeds' spread of
94.3-95.3) and 83.8 against 85.5 on Fashion-MNIST at ε=5 (lr 2, 20 epochs), so it is not used.
Pooling the 7x7 maps to fewer positions before the linear layer (fewer weights to noise) lost
2-7 points (4x4: 92.1; 2x2: 87.6 on the proxy at ε=1).

The parts:

* **architecture** — the dataset's ``dp_arch``: GroupNorm after each convolution for 28x28
  images (De et al. 2022; BatchNorm is undefined under DP-SGD), a small tanh network for digits
  (5k parameters instead of 74k: less total noise; bounded activations, Papernot et al. 2021).
  For 28x28 grey images, ``scatternet_linear`` (:mod:`auditml.models.scattering`).
  Applies when ``model.arch`` is null; a named architecture is used as named.
* **schedule** — the architecture the recipe chose trains with its own batch size, epochs,
  optimiser, learning rate and clipping norm (:data:`SCHEDULES`), written into the config before
  σ is calibrated, so σ fits the sampling rate and steps that run and ε is as configured.
* **min_learning_rate** — Adam's step is normalised by the gradient's scale, so under DP its
  learning rate sets how far each noisy step moves; at a few hundred steps 1e-3 is too timid
  (the largest single gain above). Adam and AdamW only; SGD's step scales with the clipped
  gradient and is left as configured.
* **ema_decay** — an exponential moving average of the iterates, released instead of the last
  ones (De et al. 2022). Post-processing, so free in ε; it gained nothing at these step counts,
  so the default leaves it off.
* **lr_schedule** — ``cosine`` decays the rate to 0 over the run's steps (:func:`lr_schedule`).
  It halves the mean rate: at the recipe's 3e-3 it lost 0.7 points on Fashion-MNIST and 5-9 on
  digits; with the peak doubled it matched the constant recipe (78.6 against 78.35, one seed,
  within the seeds' spread). So the default stays constant.

* **augmentation_multiplicity** — each example's gradient is the mean over K randomly shifted
  copies, taken before clipping (De et al. 2022; :mod:`auditml.training.augmentation`): the
  same mechanism at K times the compute, images only, in Opacus's hooks mode. Off by default:
  at K = 4 it lost 2.2 points on Fashion-MNIST at ε=1 (76.2 against 78.35, 1787 s against
  126 s on one CPU thread), as the issue's GPU probe found at this step budget (72.2 / 63.6
  against 74.9 / 67.6); De et al. gain from it over thousands of steps.

Inputs are standardised by every dataset loader already, with and without DP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from auditml.config import AuditMLConfig, DPRecipeConfig


@dataclass(frozen=True)
class Schedule:
    """The training settings an architecture the recipe chooses is trained with under DP, for
    configured ε from ``min_epsilon`` up (to the next schedule's)."""

    batch_size: int
    epochs: int
    optimizer: str
    learning_rate: float
    momentum: float
    max_grad_norm: float
    min_epsilon: float = 0.0


# Per architecture the recipe chooses: the schedules its accuracy was measured with, by the
# configured ε (ascending ``min_epsilon``; a config that sets σ instead of ε gets the first).
# scatternet_linear follows Tramèr & Boneh's ScatterNet + linear runs (SGD with momentum 0.9,
# clipping norm 0.1, batches of thousands), scaled to the few thousand examples of the seed's
# configs. Measured by the head alone on the scattering features (closed-form per-example
# gradients, the same mechanism; validation accuracy, seeds 0-2 where given):
#
# - MNIST proxy (3,500 members), ε=1: batch 1024 / 20 epochs / lr 1 94.5, 95.3 (seeds 0, 1);
#   lr 2 93.0, 94.5; 40 epochs at lr 1 94.1, 93.6; lr 0.25-0.5 94.0-94.7; lr 4-8 86-89 (their
#   lr 8 is for 60,000 examples); batch 512 / 2048 lower. Fashion-MNIST (5,000), ε=1: lr 1
#   82.3 (``auditml train``), lr 0.5 81.7, 40 epochs 81.8.
# - MNIST proxy, ε=5: 1024 / 20 / lr 1 95.7, 96.3; 1024 / 40 / lr 2 97.3, 96.9; Fashion-MNIST,
#   ε=5: 1024 / 20 / lr 1 83.9, lr 2 85.5, 40 epochs lr 2 86.2. More noise per step (ε below
#   about 2) favours the shorter, gentler schedule; less noise, the longer and faster one.
SCHEDULES: dict[str, tuple[Schedule, ...]] = {
    "scatternet_linear": (
        Schedule(batch_size=1024, epochs=20, optimizer="sgd", learning_rate=1.0, momentum=0.9,
                 max_grad_norm=0.1),
        Schedule(batch_size=1024, epochs=40, optimizer="sgd", learning_rate=2.0, momentum=0.9,
                 max_grad_norm=0.1, min_epsilon=2.0),
    ),
}


def active_recipe(config: AuditMLConfig) -> DPRecipeConfig | None:
    """The run's recipe with every part written out; None without DP-SGD (no recipe applies)."""
    dp = config.training.dp
    return dp.recipe.resolved() if dp.enabled else None


def recipe_schedule(config: AuditMLConfig) -> Schedule | None:
    """The schedule the recipe trains its chosen architecture with; None when DP-SGD is off,
    the recipe's ``schedule`` part is off, the config names a model, or the architecture has no
    schedule (the config's settings are used as written)."""
    recipe = active_recipe(config)
    if recipe is None or not recipe.schedule or config.model.arch is not None:
        return None
    return schedule_for(SCHEDULES.get(config.arch, ()), config.training.dp.epsilon)


def schedule_for(schedules: tuple[Schedule, ...], epsilon: float | None) -> Schedule | None:
    """The schedule for a configured ``epsilon``: the last whose ``min_epsilon`` it reaches
    (the first when ε is not configured, i.e. σ is given); None when there are none."""
    if not schedules:
        return None
    if epsilon is None:
        return schedules[0]
    reached = [schedule for schedule in schedules if epsilon >= schedule.min_epsilon]
    return reached[-1] if reached else schedules[0]


def schedule_changes(config: AuditMLConfig) -> dict[str, dict[str, Any]]:
    """The settings the recipe's schedule changes: ``{name: {"configured": ..., "used": ...}}``
    (empty when it changes none). The batch is at most ``data.train_size``."""
    schedule = recipe_schedule(config)
    if schedule is None:
        return {}
    training = config.training
    pairs = {
        "batch_size": (config.data.batch_size, min(schedule.batch_size, config.data.train_size)),
        "epochs": (training.epochs, schedule.epochs),
        "optimizer": (training.optimizer, schedule.optimizer),
        "learning_rate": (training.learning_rate, schedule.learning_rate),
        "momentum": (training.momentum, schedule.momentum),
        "max_grad_norm": (training.dp.max_grad_norm, schedule.max_grad_norm),
    }
    return {name: {"configured": configured, "used": used}
            for name, (configured, used) in pairs.items() if configured != used}


def with_schedule(config: AuditMLConfig) -> AuditMLConfig:
    """``config`` with the recipe's schedule written in (the config itself when it has none).

    Batch size and epochs set the sampling rate and the number of steps, so everything planned
    from the returned config (σ calibrated by :func:`auditml.training.privacy.plan_noise`, the
    accountant's ε) is for the schedule that actually runs. The model stays unnamed (the
    recipe's choice), so applying it twice changes nothing more.
    """
    changes = schedule_changes(config)
    if not changes:
        return config
    used = {name: change["used"] for name, change in changes.items()}
    data = config.data.model_copy(update={
        "batch_size": used.get("batch_size", config.data.batch_size)})
    dp = config.training.dp.model_copy(update={
        "max_grad_norm": used.get("max_grad_norm", config.training.dp.max_grad_norm)})
    training = config.training.model_copy(update={
        **{name: used[name] for name in ("epochs", "optimizer", "learning_rate", "momentum")
           if name in used},
        "dp": dp,
    })
    return config.model_copy(update={"data": data, "training": training}, deep=True)


def schedule_line(changes: dict[str, dict[str, Any]], arch: str) -> str | None:
    """What the run prints of the schedule's changes (None when there are none)."""
    if not changes:
        return None
    parts = ", ".join(f"{name} {change['used']:g}" if not isinstance(change["used"], str)
                      else f"{name} {change['used']}" for name, change in changes.items())
    configured = ", ".join(f"{change['configured']}" for change in changes.values())
    return (f"DP recipe: {arch} trains with {parts} (configured: {configured}); σ is calibrated "
            "for this schedule, so ε is as configured. To train as configured, set "
            "training.dp.recipe: plain or name a model (model.arch)")


def learning_rate(config: AuditMLConfig) -> float:
    """The learning rate training uses: the configured one, raised to the recipe's floor for
    Adam and AdamW under DP-SGD. The floor was measured training classifiers from scratch; a
    model fine-tuned from ``model.base``, or a language model, trains at the configured rate (a
    raised rate would undo the base's training)."""
    configured = config.training.learning_rate
    recipe = active_recipe(config)
    if recipe is None or config.training.optimizer == "sgd":
        return configured
    if config.model.base is not None or config.dataset_spec.task != "classification":
        return configured
    return max(configured, recipe.min_learning_rate or 0.0)


def recipe_record(config: AuditMLConfig) -> dict[str, Any] | None:
    """What ``metrics.json`` records of the recipe (None without DP-SGD), from the config as
    the user wrote it: the schedule's changes name the configured and the used values."""
    recipe = active_recipe(config)
    if recipe is None:
        return None
    changes = schedule_changes(config)
    return {
        **recipe.model_dump(mode="json"),
        "arch": config.arch,
        "learning_rate": learning_rate(with_schedule(config)),
        "schedule_changes": changes,
    }


def lr_schedule(optimizer: torch.optim.Optimizer, config: AuditMLConfig, steps: int
                ) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The recipe's learning-rate schedule over ``steps`` optimiser steps, stepped after each
    (None: the rate stays as configured). ``cosine``: ``lr_t = lr (1 + cos(pi t / steps)) / 2``,
    from the full rate at the first step towards 0 at the last."""
    recipe = active_recipe(config)
    if recipe is None or recipe.lr_schedule in (None, "constant") or steps < 1:
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))
    )


class WeightAverage:
    """An exponential moving average of ``parameters``, updated after each optimiser step.

    ``avg <- decay * avg + (1 - decay) * theta``, starting from the initial weights. With
    ``decay == 0`` it is the identity (the last weights are released) and costs nothing.
    """

    def __init__(self, parameters: list[torch.nn.Parameter], decay: float) -> None:
        self.parameters, self.decay = parameters, decay
        self.average = [p.detach().clone() for p in parameters] if decay > 0 else []

    @torch.no_grad()
    def update(self) -> None:
        for average, parameter in zip(self.average, self.parameters, strict=True):
            average.lerp_(parameter.detach(), 1 - self.decay)

    @torch.no_grad()
    def release(self) -> None:
        """Write the average into the model's parameters (the weights evaluated and saved)."""
        for average, parameter in zip(self.average, self.parameters, strict=True):
            parameter.copy_(average)
