"""Membership inference by quantile regression, QMIA (Bertran et al. 2023, "Scalable Membership
Inference Attacks via Quantile Regression", NeurIPS).

No reference models. The attack learns, from population examples only (known non-members of
the target), how the target's score is distributed on a non-member *like this one*, and asks
whether the audited example's score is too high for that distribution: a threshold per example
instead of one for all, so examples that every model finds easy are not mistaken for members.

Signal: the hinge score of the target f, s(x, y) = f_y(x) − max_{j≠y} f_j(x) (the paper's
choice: the logit margin, large when the model is confidently right).

Regression. A small MLP g reads the flattened input x (centred and scaled by the population's own
mean and deviation) and predicts, for each class, the parameters of s's
distribution on non-members; the head of the example's label y is used (the paper conditions on
(x, y) the same way). It is trained by full-batch Adam on the population's scores, the best
epoch chosen by the loss on a held-out ``validation_fraction`` of the population (the network
can memorise a few hundred examples; the held-out loss says when it starts to). Two
regressions:

- ``gaussian`` (default): g predicts a mean μ(x, y) and a deviation σ(x, y), fitted by the
  Gaussian negative log-likelihood; score = (s − μ) / σ, the standardised margin. Its
  (1 − α)-quantile is μ + σ·Φ⁻¹(1 − α) for every α at once, so one fit thresholds every false-
  positive rate, which the paper's own code offers for the same reason. This is the default
  because an audit reads the whole ROC (and TPR at 0.1 % and 1 % FPR); with a single pinball
  quantile the score is calibrated only near its own α, and fitting a 0.999 quantile from 1,000
  non-members rests on one example.
- ``quantile``: g predicts the ``quantile``-th quantile q(x, y) (the paper's Algorithm 1, with
  ``quantile`` = 1 − α), fitted by the pinball loss
  ℓ_τ(s, q) = max(τ (s − q), (τ − 1)(s − q)); score = s − q, positive when the example would
  be flagged at false-positive rate α. Any minimiser of the pinball loss over a constant input
  is an empirical τ-quantile of the scores.

The target model is queried on the population (to learn) and on the audited examples (to
score); the audited examples never enter the regression. Reproducible from the audit seed
(network initialisation and the validation split).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, ValidationInfo, field_validator
from torch import nn

from auditml.attacks.base import AttackSettings, AuditTarget, MembershipAttack, MissingResourceError
from auditml.errors import AuditMLError
from auditml.models import predict_logits

QmiaRegression = Literal["gaussian", "quantile"]

DEFAULT_QUANTILE = 0.99
"""The quantile fitted by ``regression="quantile"`` when none is given: 1 − α at α = 1 % FPR."""

MIN_LOG_STD = float(np.log(1e-2))
"""Floor of the predicted log deviation, in units of the population scores' deviation (1 %
of it), so a group of near-identical scores cannot drive the likelihood to infinity and make
every other example's standardised score explode."""


class QmiaSettings(AttackSettings):
    regression: QmiaRegression = "gaussian"
    quantile: float | None = Field(
        default=None, gt=0.0, lt=1.0, allow_inf_nan=False,
        description=f"quantile fitted with regression='quantile' (default {DEFAULT_QUANTILE})",
    )
    hidden: int = Field(default=64, ge=1, description="width of the regressor's two layers")
    epochs: int = Field(default=300, ge=1, description="full-batch Adam steps")
    learning_rate: float = Field(default=3e-3, gt=0.0, allow_inf_nan=False)
    weight_decay: float = Field(default=1e-3, ge=0.0, allow_inf_nan=False)
    validation_fraction: float = Field(
        default=0.2, ge=0.0, lt=1.0, allow_inf_nan=False,
        description="population held out to choose the epoch; 0 = keep the last epoch",
    )

    @field_validator("quantile")
    @classmethod
    def _quantile_regression_only(cls, quantile: float | None, info: ValidationInfo
                                  ) -> float | None:
        if quantile is not None and info.data.get("regression") != "quantile":
            raise ValueError(
                "quantile is used only with regression='quantile'; remove it or set "
                "regression: quantile"
            )
        return quantile


class QmiaAttack(MembershipAttack):
    """Per-example thresholds from a quantile regression on population data (Bertran et al.
    2023)."""

    name = "mia_qmia"
    Settings = QmiaSettings
    requires = frozenset({"population"})

    def _fit(self, target: AuditTarget) -> None:
        population = target.population
        if population is None:  # fit() has checked; this narrows the type
            raise MissingResourceError(f"{self.name} needs population data")
        if len(population) < 2:
            raise MissingResourceError(
                f"{self.name} needs at least 2 population examples to learn from, got "
                f"{len(population)}; raise audit.population_size"
            )
        labels = np.asarray(population.y)
        scores = hinge_scores(
            predict_logits(target.model, population.x, device=target.device), labels
        )
        self._regressor = ScoreRegressor(
            regression=self.params.regression, quantile=self.quantile, hidden=self.params.hidden,
            epochs=self.params.epochs, learning_rate=self.params.learning_rate,
            weight_decay=self.params.weight_decay,
            validation_fraction=self.params.validation_fraction,
        ).fit(population.x, labels, scores, num_classes=target.num_classes, seed=target.seed)

    @property
    def quantile(self) -> float | None:
        """The quantile fitted (None for the Gaussian regression)."""
        if self.params.regression != "quantile":
            return None
        return DEFAULT_QUANTILE if self.params.quantile is None else self.params.quantile

    def fitted_values(self) -> dict[str, Any]:
        """The quantile used, the epoch kept and the regression's loss on held-out
        population (None without a held-out part)."""
        regressor = getattr(self, "_regressor", None)
        if self._target is None or regressor is None:
            return {}
        values: dict[str, Any] = {"epoch": regressor.best_epoch,
                                  "validation_loss": regressor.validation_loss}
        if self.quantile is not None:
            values["quantile"] = self.quantile
        return values

    def score(self) -> np.ndarray:
        target = self.target
        labels = np.asarray(target.examples.y)
        observed = hinge_scores(target.logits(), labels)
        location, scale = self._regressor.predict(target.examples.x, labels)
        return (observed - location) / scale


def hinge_scores(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The logit margin f_y(x) − max_{j≠y} f_j(x) of each row, float64 ``(N,)``."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise AuditMLError(
            f"`logits` must be (examples, classes) with at least 2 classes, got {logits.shape}."
        )
    true = np.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    others = logits.copy()
    np.put_along_axis(others, labels[:, None], -np.inf, axis=1)
    return true - others.max(axis=1)


class ScoreRegressor:
    """An MLP predicting, from an input x and its label y, where a score falls on non-members:
    its ``quantile``-th quantile (``regression="quantile"``) or a mean and a deviation
    (``"gaussian"``). Estimator pattern: settings in ``__init__``, then ``fit``, ``predict``.
    """

    def __init__(self, *, regression: QmiaRegression, quantile: float | None, hidden: int,
                 epochs: int, learning_rate: float, weight_decay: float,
                 validation_fraction: float) -> None:
        if regression == "quantile" and quantile is None:
            raise AuditMLError("`quantile` must be given with regression='quantile'.")
        self.regression, self.quantile, self.hidden = regression, quantile, hidden
        self.epochs, self.learning_rate, self.weight_decay = epochs, learning_rate, weight_decay
        self.validation_fraction = validation_fraction
        self.best_epoch: int | None = None
        self.validation_loss: float | None = None
        self._network: nn.Module | None = None

    def fit(self, x: np.ndarray, labels: np.ndarray, scores: np.ndarray, *, num_classes: int,
            seed: int) -> ScoreRegressor:
        features = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        labels = np.asarray(labels, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        if not np.isfinite(scores).all():
            raise AuditMLError("the target's scores on the population must be finite.")
        order = np.random.default_rng(seed).permutation(len(scores))
        held = round(self.validation_fraction * len(scores))
        held = min(held, len(scores) - 1)  # at least one example to learn from
        train, validation = order[held:], order[:held]
        # Centre inputs and scores with the training part only, so the held-out loss is that
        # of unseen data. Inputs are scaled by one number, not per feature: auditml's inputs
        # are normalised already, and a pixel or one-hot column that is almost constant would
        # otherwise be blown up to hundreds of deviations on the examples where it is not.
        self._feature_mean = features[train].mean(axis=0)
        self._feature_scale = float((features[train] - self._feature_mean).std()) or 1.0
        self._score_mean = float(scores[train].mean())
        self._score_scale = float(scores[train].std()) or 1.0
        inputs = torch.from_numpy(self._standardised(features))
        targets = torch.from_numpy((scores - self._score_mean) / self._score_scale).float()
        heads = torch.from_numpy(labels)
        outputs = 2 if self.regression == "gaussian" else 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = nn.Sequential(
                nn.Linear(features.shape[1], self.hidden), nn.ReLU(),
                nn.Linear(self.hidden, self.hidden), nn.ReLU(),
                nn.Linear(self.hidden, num_classes * outputs),
            )
        optimizer = torch.optim.AdamW(network.parameters(), lr=self.learning_rate,
                                      weight_decay=self.weight_decay)
        train_t, validation_t = torch.from_numpy(train), torch.from_numpy(validation)
        best: dict[str, torch.Tensor] | None = None
        for epoch in range(1, self.epochs + 1):
            network.train()
            optimizer.zero_grad()
            loss = self._loss(network(inputs[train_t]), heads[train_t], targets[train_t])
            loss.backward()
            optimizer.step()
            if held:
                network.eval()
                with torch.no_grad():
                    held_loss = float(self._loss(network(inputs[validation_t]),
                                                 heads[validation_t], targets[validation_t]))
                if self.validation_loss is None or held_loss < self.validation_loss:
                    self.validation_loss, self.best_epoch = held_loss, epoch
                    best = {k: v.detach().clone() for k, v in network.state_dict().items()}
        if best is not None:
            network.load_state_dict(best)
        else:
            self.best_epoch = self.epochs
        self._network = network.eval()
        return self

    def predict(self, x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(location, scale)``, each float64 ``(N,)``, in the scores' own units: the fitted
        quantile and 1 (``quantile``), or the predicted mean and deviation (``gaussian``)."""
        if self._network is None:
            raise AuditMLError("the regressor is not fitted yet: call fit first.")
        features = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        with torch.no_grad():
            heads = self._heads(self._network(torch.from_numpy(self._standardised(features))),
                                torch.from_numpy(np.asarray(labels, dtype=np.int64)))
        location = heads[..., 0].double().numpy() * self._score_scale + self._score_mean
        if self.regression == "quantile":
            return location, np.ones(len(location))
        log_std = heads[..., 1].clamp(min=MIN_LOG_STD).double().numpy()
        return location, np.exp(log_std) * self._score_scale

    def _standardised(self, features: np.ndarray) -> np.ndarray:
        return ((features - self._feature_mean) / self._feature_scale).astype(np.float32)

    def _heads(self, output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The outputs of each row's own label: ``(N, outputs)``."""
        per_class = output.reshape(len(output), -1, 2 if self.regression == "gaussian" else 1)
        return per_class[torch.arange(len(output)), labels]

    def _loss(self, output: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor
              ) -> torch.Tensor:
        heads = self._heads(output, labels)
        if self.regression == "quantile":
            quantile = DEFAULT_QUANTILE if self.quantile is None else self.quantile
            error = targets - heads[:, 0]
            return torch.maximum(quantile * error, (quantile - 1.0) * error).mean()
        mean, log_std = heads[:, 0], heads[:, 1].clamp(min=MIN_LOG_STD)
        return (0.5 * ((targets - mean) * torch.exp(-log_std)) ** 2 + log_std).mean()
