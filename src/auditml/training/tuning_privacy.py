"""What tuning hyperparameters on private data costs: the random-stopping tuner's privacy.

Papernot & Steinke 2022, "Hyperparameter Tuning with Renyi Differential Privacy" (ICLR),
Theorem 2. Let Q be a randomised algorithm (here: draw a candidate setting uniformly, then train
it with DP-SGD) that is (λ, ε(λ))-RDP at every order λ > 1. Let K be drawn from the truncated
negative binomial distribution D_{η,γ} (η > −1, 0 < γ < 1),

    P[K = k] = (1 − γ)^k / (γ^−η − 1) · Π_{ℓ=0}^{k−1} (ℓ + η) / (ℓ + 1),   k = 1, 2, ...

(η = 1: the geometric distribution γ(1 − γ)^{k−1}; η = 0: the logarithmic distribution
(1 − γ)^k / (k log(1/γ))), and let A run Q K times independently and output the best run
(by any score computed from Q's outputs; here validation accuracy). Then for every λ > 1 and
every λ̂ ≥ 1, A is (λ, ε'(λ))-RDP with

    ε'(λ) = ε(λ) + (1 + η)(1 − 1/λ̂) ε(λ̂) + (1 + η) log(1/γ) / λ̂ + log E[K] / (λ − 1),

    E[K] = η(1 − γ) / (γ(1 − γ^η))  (η ≠ 0),     E[K] = (1/γ − 1) / log(1/γ)  (η = 0).

:func:`random_stopping_rdp` takes the best λ̂ on the order grid (λ̂ = 1 included, where the
second term vanishes). The formula was checked against the paper's statement as implemented in
autodp's ``RDP_selection_TNB`` (the same four terms and E[K]); the tests check it against closed
forms: a Gaussian mechanism, whose best λ̂ is known, and the pure-DP limit, where it gives
(2 + η)ε — 3ε for the geometric distribution, Liu & Talwar's (2019) random-stopping bound.
Conversion to (ε, δ) is Opacus's (Balle et al. 2020, Theorem 21).

Assumptions: the K runs are independent (each trial trains with fresh randomness); which
candidate a trial uses does not depend on the data; the score used to pick the best run does
not use the training members (the validation set is held out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from auditml.errors import ConfigError
from auditml.metrics.dp.accounting import rdp_epsilon, rdp_of_history, rdp_orders

# Opacus's orders, extended upwards: the best λ̂ grows with log(1/γ) and the noise.
ORDERS = np.array([*rdp_orders(), 80, 96, 128, 192, 256, 512, 1024], float)


MAX_EXPECTED_TRIALS = 10_000
"""A stopping rule expecting more trials than this is no plan (γ = 1e-300 expected 1e300)."""


@dataclass(frozen=True)
class StoppingRule:
    """The distribution D_{η,γ} of the number of trials (η = 1: geometric)."""

    eta: float
    gamma: float

    def __post_init__(self) -> None:
        if not 0 < self.gamma < 1:
            raise ConfigError(f"`gamma` must be in (0, 1), got {self.gamma}.")
        # The theorem allows η in (−1, 0) too; numpy has no sampler for it, so it is refused.
        if not (math.isfinite(self.eta) and self.eta >= 0):
            raise ConfigError(f"`eta` must be a finite number >= 0, got {self.eta}.")
        if not self.expected_trials <= MAX_EXPECTED_TRIALS:
            raise ConfigError(
                f"--tune-stopping {self.describe()} expects {self.expected_trials:.3g} trials, "
                f"each a training run; choose one that expects at most {MAX_EXPECTED_TRIALS:,} "
                "(geometric:GAMMA expects 1/GAMMA)"
            )

    @classmethod
    def parse(cls, text: str) -> StoppingRule:
        """``geometric:γ`` (η = 1), ``logarithmic:γ`` (η = 0) or ``negative_binomial:η:γ``."""
        kind, _, rest = text.partition(":")
        parts = rest.split(":") if rest else []
        usage = ("--tune-stopping: give geometric:GAMMA, logarithmic:GAMMA or "
                 "negative_binomial:ETA:GAMMA (e.g. geometric:0.1)")
        try:
            numbers = [float(part) for part in parts]
        except ValueError:
            raise ConfigError(f"{usage}; got {text[:60]!r}") from None
        if kind == "geometric" and len(numbers) == 1:
            return cls(1.0, numbers[0])
        if kind == "logarithmic" and len(numbers) == 1:
            return cls(0.0, numbers[0])
        if kind == "negative_binomial" and len(numbers) == 2:
            return cls(numbers[0], numbers[1])
        raise ConfigError(f"{usage}; got {text[:60]!r}")

    @property
    def expected_trials(self) -> float:
        """E[K] (the paper's closed form)."""
        eta, gamma = self.eta, self.gamma
        if eta == 0:
            return (1 / gamma - 1) / math.log(1 / gamma)
        # 1 − γ^η as −expm1(η·ln γ): exact where η is tiny (γ^η rounds to 1 there).
        return eta * (1 - gamma) / (gamma * -math.expm1(eta * math.log(gamma)))

    def draw(self, rng: np.random.Generator) -> int:
        """One K ~ D_{η,γ}."""
        if self.eta == 0:
            return int(rng.logseries(1 - self.gamma))
        while True:  # the negative binomial (failures before η successes) conditioned on K >= 1
            k = int(rng.negative_binomial(self.eta, self.gamma))
            if k >= 1:
                return k

    def describe(self) -> str:
        if self.eta == 1:
            return f"geometric, γ={self.gamma:g}"
        if self.eta == 0:
            return f"logarithmic, γ={self.gamma:g}"
        return f"truncated negative binomial, η={self.eta:g}, γ={self.gamma:g}"


def random_stopping_rdp(orders: np.ndarray, rdp: np.ndarray, rule: StoppingRule) -> np.ndarray:
    """RDP ε'(λ) at each of ``orders`` of the tuner whose one trial has RDP ``rdp`` (Theorem 2).

    ``rdp[i]`` is one trial's RDP at ``orders[i]`` (all > 1); for candidates with different
    noise schedules pass their pointwise maximum. λ̂ ranges over ``orders`` and 1.
    """
    orders, rdp = np.asarray(orders, float), np.asarray(rdp, float)
    if orders.ndim != 1 or orders.shape != rdp.shape or not len(orders):
        raise ValueError("`orders` and `rdp` must be 1-D arrays of the same, non-zero length.")
    if not (np.all(orders > 1) and np.all(np.isfinite(orders))):
        raise ValueError("`orders` must be finite and greater than 1.")
    if np.any(np.isnan(rdp)) or np.any(rdp < 0):
        raise ValueError("`rdp` must be non-negative (inf allowed).")
    factor, log_inverse_gamma = 1 + rule.eta, math.log(1 / rule.gamma)
    with np.errstate(invalid="ignore"):
        selection = factor * (1 - 1 / orders) * rdp + factor * log_inverse_gamma / orders
    # λ̂ = 1: the ε(λ̂) term vanishes (its coefficient is 0, and ε(1) is finite for DP-SGD).
    best_selection = min(float(np.nanmin(selection)), factor * log_inverse_gamma)
    return rdp + best_selection + math.log(rule.expected_trials) / (orders - 1)


@dataclass(frozen=True)
class TunedPrivacy:
    """(ε, δ) of one trial and of the whole tuner, both from RDP at the same orders."""

    trial_epsilon: float
    tuned_epsilon: float
    delta: float
    order: float
    expected_trials: float


def random_stopping_epsilon(
    schedules: list[tuple[float, float, int]], delta: float, rule: StoppingRule
) -> TunedPrivacy:
    """(ε, δ) of the random-stopping tuner over DP-SGD trials.

    ``schedules`` holds each candidate's (noise multiplier, sample rate, steps); one trial's RDP
    is their pointwise maximum (a data-independent choice among them is no worse than the
    worst). RDP of the subsampled Gaussian is Opacus's; so is the conversion to (ε, δ).
    """
    if not schedules:
        raise ValueError("`schedules` must name at least one DP-SGD schedule.")
    rdp = np.max([rdp_of_history([schedule], ORDERS) for schedule in schedules], axis=0)
    trial, _ = rdp_epsilon(rdp, delta, orders=ORDERS)
    tuned, order = rdp_epsilon(random_stopping_rdp(ORDERS, rdp, rule), delta, orders=ORDERS)
    return TunedPrivacy(trial, tuned, delta, order, rule.expected_trials)
