"""A multi-signal membership attack: RMIA's and LiRA's per-example statistics, weighed by a
likelihood-ratio test learned on the reference models themselves.

Signals. For a model f, an example (x, y) and reference models θ_1..θ_R (``keep[k, i]``: θ_k
trained on example i), five per-example statistics, each already a membership test on its own:

- RMIA's log-ratio at temperature T, for each T of ``temperatures`` (default 1, 2, 4):
  log p_y^T(x | f) − log mean_k p_y^T(x | θ_k), with p^T = softmax(logits / T). This is the
  statistic the online RMIA of :mod:`auditml.attacks.rmia` ranks by (Zarifzadeh et al. 2024,
  "Low-Cost High-Power Membership Inference Attacks", ICML; its pairwise comparison with
  population samples keeps the order of this ratio); different temperatures weigh confident and
  unconfident examples differently (alone, on the benchmark below with 8 reference models,
  T = 1, 2, 4 give AUC 0.672, 0.682, 0.675 and TPR at 0.1 % FPR 3.3 %, 4.8 %, 3.5 %).
- With ``lira_signals`` (default), LiRA's online log-likelihood ratio and its offline one-sided
  statistic −log P(Φ ≥ φ_f) for the logit-scaled confidence φ = log(p_y / (1 − p_y)), with one
  variance per side (Carlini et al. 2022, "Membership Inference Attacks From First
  Principles", IEEE S&P; :func:`auditml.attacks.lira.lira_scores`).

Combination. By the Neyman–Pearson lemma the most powerful test of "member" against
"non-member" at every false-positive rate thresholds the likelihood ratio of the *joint*
observation s = (s_1, …, s_d), not of any one signal. When log p(s | IN) − log p(s | OUT) is
affine in s — true when both classes are Gaussians with a shared covariance (the setting of
linear discriminant analysis), or any exponential family with s as its sufficient statistic —
logistic regression on balanced IN/OUT data estimates exactly that log-ratio (up to a constant,
which no threshold sees), and it weighs correlated signals by their joint distribution.
LeakPro's multi-signal LiRA (Johansson & Olsson 2025) instead adds per-signal Gaussian
log-ratios, assuming the signals independent; statistics computed from the same logits are
strongly correlated (on one Fashion-MNIST target below, RMIA's log-ratios at T = 1, 2, 4
correlate at 0.81-0.96 with each other and LiRA's online statistic at 0.70-0.76 with them), and
summing them counts the same evidence several times.

Where the IN/OUT data come from. The target's membership is never seen: each reference model
in turn plays the target. Its references are the other reference models less its complementary
partner (a model whose keep row is the negation of its own): with the partner, which models are
IN for an example would depend on the very membership being guessed, as
:func:`auditml.attacks.rmia.tune_offline_a` also avoids. Its signals on the audited examples,
labelled by its own keep row, are the training data (R played models × N examples); the
signals are standardised and a logistic regression with an L2 penalty ``l2`` (scikit-learn's
C = 1 / l2) is fitted; the target's signals against all R reference models are then scored by
its decision function (the estimated log-likelihood ratio; higher = member). With two reference
models a model's only other reference is its partner; it is used then (recorded as
``partner_used``), with RMIA's signals only: the partner is OUT wherever the played model is IN,
so LiRA's IN and OUT Gaussians would each come from the other side's global statistics and
learn weights that do not transfer to the target (measured: AUC 0.615 with them, 0.675
without, on the benchmark below).
Reference counts differ (R − 2 for a played model, R for the target), which changes each
signal's spread a little; standardising by the played models' spread leaves that small shift.

Why not a loss-trajectory attack (Liu et al. 2022, "Membership Inference Attacks by Exploiting
Loss Trajectory", CCS). It needs the target's loss at every epoch of a *distillation* of it on
population data, and the same for distilled shadow models: one extra training run of E epochs
per model (E = the target's, 20 here) for the target and each reference model, checkpointed
each epoch, beside the reference models auditml already trains — roughly doubling an audit's
training on 2 CPU cores, for an attack whose published gains are over attacks without reference
models, not over RMIA with them. Everything this attack uses an audit already has.

Measured (``benchmarks/attack_strength.py``, issue 30's setting: Fashion-MNIST, ``cnn_28x28``,
1,000 members + 1,000 non-members, seeds 0-4; AUC / TPR at 0.1 % FPR / TPR at 1 % FPR, means
over seeds [95 % bootstrap interval over examples]):

=====================  ==================================  ===========================
reference models       this attack                         RMIA's default
=====================  ==================================  ===========================
2                      0.675 / 3.0 % / 9.4 %               0.678 / 3.1 % / 9.6 %
8                      0.683 [0.672, 0.693] / 4.8 %        0.682 [0.671, 0.692] / 4.8 %
                       [3.0, 5.8] / 11.3 % [9.9, 13.0]     [2.7, 6.0] / 10.7 % [8.7, 12.0]
16                     0.688 / 6.2 % / 11.6 %              0.687 / 6.1 % / 11.5 %
=====================  ==================================  ===========================

Within the noise, and not above RMIA in every seed (at 8 models, TPR at 0.1 % FPR higher in 2
seeds of 5, at 1 % in 3): the learned weights rest almost wholly on RMIA's T = 2 statistic
(seed 0, standardised: 1.40 against -0.34, -0.04, 0.17, 0.09 for the others), which already
carries what these logit signals know. The attack is kept as the suite's multi-signal attack
and as a check that RMIA's single statistic leaves nothing on the table here; it is not a
default. It needs no population data, which RMIA does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from pydantic import Field, field_validator
from scipy.special import logsumexp

from auditml.attacks.base import AttackSettings, AuditTarget, MembershipAttack, MissingResourceError
from auditml.attacks.lira import lira_scores
from auditml.attacks.signals import logit_confidence, true_class_log_probs
from auditml.errors import AuditMLError
from auditml.metrics import roc_auc

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

DEFAULT_TEMPERATURES: tuple[float, ...] = (1.0, 2.0, 4.0)
"""The temperatures of RMIA's log-ratio signals by default (module docstring, Signals)."""


class MultiSignalSettings(AttackSettings):
    temperatures: tuple[float, ...] = Field(
        default=DEFAULT_TEMPERATURES, min_length=1,
        description="softmax temperatures of RMIA's log-ratio signals, one signal each",
    )
    lira_signals: bool = Field(
        default=True,
        description="also use LiRA's online log-likelihood ratio and offline statistic",
    )
    l2: float = Field(
        default=1.0, gt=0.0, allow_inf_nan=False,
        description="L2 penalty of the logistic regression on standardised signals "
        "(scikit-learn's C = 1 / l2)",
    )

    @field_validator("temperatures")
    @classmethod
    def _positive_and_distinct(cls, temperatures: tuple[float, ...]) -> tuple[float, ...]:
        if not all(np.isfinite(t) and t > 0 for t in temperatures):
            raise ValueError("every temperature must be a positive number")
        if len(set(temperatures)) != len(temperatures):
            raise ValueError("temperatures must be distinct (a repeated one adds no signal)")
        return temperatures


class MultiSignalAttack(MembershipAttack):
    """RMIA's and LiRA's signals combined by a likelihood-ratio test learned on the reference
    models (module docstring)."""

    name = "mia_multi_signal"
    Settings = MultiSignalSettings
    requires = frozenset({"reference"})
    uses_model = False

    def _fit(self, target: AuditTarget) -> None:
        reference = target.reference
        if reference is None:  # fit() has checked; this narrows the type
            raise MissingResourceError(f"{self.name} needs reference models")
        keep = self.reference_keep(target)
        if len(keep) < 2:
            raise MissingResourceError(
                f"{self.name} needs at least 2 reference models (each plays the target against "
                f"the others to learn the signals' weights), got {len(keep)}; set "
                "audit.reference_models to 2 or more"
            )
        labels = np.asarray(target.examples.y)
        self._reference_logits = np.asarray(reference.logits(target.examples.x), dtype=np.float64)
        self._keep = keep
        usable = [k for k in range(len(keep)) if keep[k].any() and not keep[k].all()]
        references = {played: played_references(keep, played) for played in usable}
        # No reference model but the partner (two models): LiRA's IN/OUT Gaussians of one model
        # that is OUT wherever the played model is IN are degenerate, so only RMIA's signals.
        self._partner_used = not all(references.values())
        self._lira = self.params.lira_signals and not self._partner_used
        rows, truths = [], []
        for played in usable:
            others = references[played] or [k for k in range(len(keep)) if k != played]
            rows.append(self._signals(self._reference_logits[played], others, labels))
            truths.append(keep[played])
        if not rows:
            raise MissingResourceError(
                f"{self.name} needs reference models trained on part of the audited examples, "
                "but every model trained on all of them or on none"
            )
        signals, truth = np.concatenate(rows), np.concatenate(truths)
        self._combiner = fit_combiner(signals, truth, l2=self.params.l2)
        self._played = len(rows)
        self._played_auc = roc_auc(self._combiner.decision_function(signals), truth)

    def _signals(self, logits: np.ndarray, references: list[int], labels: np.ndarray
                 ) -> np.ndarray:
        return membership_signals(
            logits, self._reference_logits[references], self._keep[references], labels,
            temperatures=self.params.temperatures, lira_signals=self._lira,
        )

    def fitted_values(self) -> dict[str, Any]:
        """The learned weight of each (standardised) signal, how many reference models played
        the target, whether a partner had to be used, and the combiner's AUC on the played
        models (in-sample: an optimistic guide, not a measurement)."""
        if self._target is None:
            return {}
        weights = self._combiner[-1].coef_[0]
        names = signal_names(self.params.temperatures, self._lira)
        return {
            "weights": {name: float(w) for name, w in zip(names, weights, strict=True)},
            "played_models": self._played,
            "partner_used": self._partner_used,
            "played_auc": self._played_auc,
        }

    def score(self) -> np.ndarray:
        target = self.target
        signals = self._signals(target.logits(), list(range(len(self._keep))),
                                np.asarray(target.examples.y))
        return np.asarray(self._combiner.decision_function(signals), dtype=np.float64)


def played_references(keep: np.ndarray, played: int) -> list[int]:
    """The reference models used when model ``played`` plays the target: all others but its
    complementary partners (keep rows that negate its own)."""
    row = keep[played]
    return [k for k in range(len(keep))
            if k != played and not np.array_equal(keep[k], ~row)]


def signal_names(temperatures: tuple[float, ...], lira_signals: bool) -> list[str]:
    """The names of :func:`membership_signals`' columns, in order."""
    names = [f"rmia_log_ratio_t{t:g}" for t in temperatures]
    return names + (["lira_online", "lira_offline"] if lira_signals else [])


def membership_signals(
    logits: ArrayLike,
    reference_logits: ArrayLike,
    keep: ArrayLike,
    labels: ArrayLike,
    *,
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES,
    lira_signals: bool = True,
) -> np.ndarray:
    """The ``(N, d)`` signals of one model's ``logits`` ``(N, C)`` against R reference models'
    ``reference_logits`` ``(R, N, C)`` with ``keep`` ``(R, N)`` (module docstring, Signals);
    columns named by :func:`signal_names`. Each column is higher for a likelier member."""
    model = np.asarray(logits, dtype=np.float64)
    references = np.asarray(reference_logits, dtype=np.float64)
    y = np.asarray(labels)
    if model.ndim != 2 or references.ndim != 3 or references.shape[1:] != model.shape:
        raise AuditMLError(
            f"`reference_logits` must be (models, {model.shape[0]}, {model.shape[-1]}) for "
            f"`logits` of shape {model.shape}, got {references.shape}."
        )
    if y.shape != model.shape[:1]:
        raise AuditMLError(f"`labels` must have shape {model.shape[:1]}, got {y.shape}.")
    if len(references) == 0:
        raise MissingResourceError("the signals need at least one reference model, got 0.")
    reference_labels = np.broadcast_to(y, references.shape[:2])
    columns = []
    for temperature in temperatures:
        own = true_class_log_probs(model / temperature, y)[1]
        others = true_class_log_probs(references / temperature, reference_labels)[1]
        columns.append(own - (logsumexp(others, axis=0) - np.log(len(others))))
    if lira_signals:
        own_phi = logit_confidence(model, y)[None]
        reference_phi = logit_confidence(references, reference_labels)[None]
        for mode in ("online", "offline"):
            columns.append(lira_scores(own_phi, reference_phi, keep, mode=mode,
                                       variance="fixed"))
    return np.stack(columns, axis=1)


def fit_combiner(signals: np.ndarray, is_member: np.ndarray, *, l2: float) -> Pipeline:
    """Standardise the signals and fit a logistic regression of membership on them (module
    docstring, Combination); its ``decision_function`` is the attack's score."""
    # scikit-learn is imported here, not at the top: it takes about a second, and every
    # auditml command imports the attack registry.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not np.isfinite(signals).all():
        raise AuditMLError(
            "the membership signals hold non-finite values (a reference model's logits are "
            "not finite?); check the reference models"
        )
    regression = LogisticRegression(C=1.0 / l2, max_iter=1000)
    return make_pipeline(StandardScaler(), regression).fit(signals, is_member)
