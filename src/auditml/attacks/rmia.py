"""The relative membership-inference attack, RMIA (Zarifzadeh et al. 2024, "Low-Cost High-Power
Membership Inference Attacks", ICML).

Signal: Pr(x | θ) = p_y(x), the softmax probability a model θ gives the true label of x = (x, y).

RMIA compares the target θ's likelihood ratio on x with its likelihood ratio on population
examples z that no model trained on:

    LR(x) = Pr(x | θ) / Pr(x),        score(x) = |{z ∈ Z : LR(x) / LR(z) > γ}| / |Z|,

where Pr(x) is the probability averaged over models trained like the target, estimated from the
reference models (``keep[k, i]`` = model k trained on example i):

- ``online``:  Pr(x) = mean of Pr(x | θ_k) over all K reference models (about half of them IN).
- ``offline``: only the OUT models of x are used, with the paper's linear approximation of the
  IN probability, Pr_IN(x) ≈ a·Pr_OUT(x) + (1 − a), so that
  Pr(x) = ½ (Pr_IN(x) + Pr_OUT(x)) ≈ ½ ((1 + a)·Pr_OUT(x) + (1 − a)).

For the population, every reference model is OUT: Pr(z) is the mean over all K models, passed
through the same approximation in the offline mode. (The score is a non-decreasing function of
LR(x) alone, so how Pr(z) is estimated changes which scores tie, never their order.)

Ties. The fraction above is a step function of LR(x): every x with LR(x) > γ·max_z LR(z) scores
exactly 1, every x with LR(x) ≤ γ·min_z LR(z) exactly 0, and between them x's whose LR(x) falls
between the same two thresholds γ·LR(z) tie. A threshold cannot split a tie, so when the top
tie holds a single non-member no threshold reaches a false-positive rate below the tie's: with
γ = 1, offline, the issue measured 25–65 examples tied at 1.0 per Fashion-MNIST target, 2–3 of
them non-members, and TPR 0 at 0.1 % FPR in every seed (auditml issue 30). By default
(``break_ties``) examples with the same number of wins are ordered by LR(x) itself, the
secondary statistic: it is the mean over z of log(LR(x) / LR(z)) up to a constant that does
not depend on x (the average margin by which x dominates the population), it is continuous,
and it is a function of the target's outputs and the reference models only, never of
membership. Because the number of wins is non-decreasing in LR(x), the order (wins, LR(x)) is
the order of LR(x): the ROC of the tie-broken score passes through every point of the tied one
and adds the points a tie hid, so its TPR at every FPR is at least the tied score's, whatever γ
and Z (the AUC may go either way: a tie counts one half for each member/non-member pair it
holds). Its value stays in (0, 1): ``(wins + r / (N + 1)) / (|Z| + 1)`` with r the rank of LR(x)
among the N audited examples (ranks, not a squashed LR(x), which rounds to 1 for large ratios
and would tie again); only equal LR(x) still tie.

Edge cases. In the offline mode an example with no OUT reference model (one reference model, or
an unbalanced keep matrix) gets Pr_OUT(x) from the mean of its IN models by inverting the same
approximation, Pr_OUT ≈ (Pr_IN − (1 − a)) / a, as the reference code does for a single reference
model (``get_out_ref_signals`` in privacytrustlab/ml_privacy_meter), clipped to [0, 1] (our
addition: the unclipped value can be negative). At a = 0 the approximation says every IN
probability is 1 and carries no information on Pr_OUT; there the inversion uses a = 0.3
(:data:`FALLBACK_OFFLINE_A`), as the reference code does. A denominator Pr(·) that underflows to
0 is raised to the smallest positive double.

The choice of ``a`` (``a=None``, the default). ``a`` describes how far training pulls a
member's probability towards 1, a property of the training algorithm rather than of the target,
so it can be chosen with reference models alone. The paper's reference code does so
(``tune_offline_a`` in privacytrustlab/ml_privacy_meter, ``attacks.py`` and
``modules/mia/attacks/rmia.py``): one reference model plays the target, the models other than it
and its complementary pair partner are its references, the offline attack is run for every a in
{0, 0.1, …, 1}, and the a with the highest AUC against the played model's known keep row wins
(the first, i.e. smallest, on ties). :func:`tune_offline_a` does the same with reference model 0
as the played model and all remaining models as its references (the reference code uses one
pair there). When it cannot run — fewer than three reference models in pairs (nothing is left
once the played model and its partner are set aside), or a played model that trained on all or
none of the examples — ``a`` is :data:`FALLBACK_OFFLINE_A` = 0.3, the reference code's default
``offline_a``. After ``fit``, :attr:`RmiaAttack.offline_a` is the value used and
:attr:`RmiaAttack.offline_a_tuning` how it was chosen.

Defaults, by measurement (auditml issue 30). ``mode="auto"``: online when every audited example
has an IN and an OUT reference model (so with two or more reference models on complementary
halves), else offline; ``temperature`` :data:`DEFAULT_TEMPERATURE` = 2, Pr(x | θ) =
softmax(logits / 2)_y; ``gamma`` 1 with ties broken (``break_ties``), which makes the ranking,
so every ROC number, independent of γ; ``a`` tuned offline. Measured with the reference models
and target outputs of ``auditml audit`` runs (digits, default model, 500 members + 500
non-members, 60 epochs, 8 reference models, 600 population examples; means over the targets of
seeds 0–2; AUC / TPR at 0.1 % FPR / TPR at 1 % FPR):

=========================================  ======  ========  ======
setting                                    AUC     0.1 %     1 %
=========================================  ======  ========  ======
offline, tuned a, γ = 1, T = 1 (old)       0.617   1.3 %     5.1 %
offline, tuned a, γ = 2, T = 1             0.557   2.1 %     3.0 %
offline, tuned a, ties broken, T = 1       0.617   2.7 %     5.5 %
online, ties broken, T = 1                 0.620   2.7 %     5.7 %
offline, tuned a, ties broken, T = 2       0.630   5.8 %     9.3 %
online, γ = 1, ties kept, T = 2            0.641   5.9 %     9.3 %
online, ties broken, T = 2 (the default)   0.641   5.9 %     9.4 %
online, ties broken, T = 4                 0.644   2.9 %     8.3 %
=========================================  ======  ========  ======

The old default tied 10–23 examples at the top score, up to 2 of them non-members, and its TPR
at 0.1 % FPR was 0 for two of the three targets, as the issue found on Fashion-MNIST; γ = 2
removes most of the top tie but ties every example with LR(x) ≤ 2·min LR(z) at 0 (AUC 0.56);
breaking ties recovers the TPR and keeps the AUC. A temperature of 2 gains most: at 1,
confident predictions round to probability 1 in the target and the reference models alike, and
their ratio 1/1 says nothing; at 4 the members' probabilities are flattened towards the
non-members' and the TPR at 0.1 % halves. Online is at least as strong as offline here (the
online mean over all models rarely ties at the top even with ties kept), needs no ``a``, and
was the strongest RMIA in the issue's comparison with LeakPro (AUC 0.672 against 0.658
offline), so ``auto`` takes it whenever every example has both kinds of reference model.
On Fashion-MNIST (``cnn_28x28``, 500 members + 500 non-members, 10 epochs, 8 reference
models, 1,000 population examples; seeds 0–2) the same settings gave:

=========================================  ======  ========  ======
setting                                    AUC     0.1 %     1 %
=========================================  ======  ========  ======
offline, tuned a, γ = 1, T = 1 (old)       0.688   6.4 %     11.7 %
offline, tuned a, ties broken, T = 1       0.688   6.5 %     12.0 %
online, ties broken, T = 1                 0.700   8.5 %     12.8 %
offline, tuned a, ties broken, T = 2       0.701   5.3 %     12.0 %
online, ties broken, T = 2 (the default)   0.717   6.3 %     13.5 %
online, ties broken, T = 4                 0.707   1.7 %     10.2 %
=========================================  ======  ========  ======

(the old default tied 26–37 examples at the top, none of them a non-member in these three
targets). Online beats offline at every temperature here, and T = 2 has the best AUC and TPR at
1 % FPR; T = 1 has the better TPR at 0.1 % FPR on this dataset (8.5 % against 6.3 %, per target
5.2–12.2 % against 2.2–12.2 %), where on digits T = 2 doubled it. With 500 non-members a TPR at
0.1 % FPR counts the members above the single highest non-member score (see
:func:`~auditml.metrics.roc.tpr_at_fpr`), so those figures are noisy; the AUC and the TPR at
1 % FPR, which rest on many examples, favour T = 2 on both datasets.
``benchmarks/rmia_defaults.py`` reproduces the table.

Memory. The N × |Z| comparison is never formed: LR(x) / LR(z) > γ ⟺ LR(x) > γ·LR(z) (LR(z) > 0),
so the score is the number of sorted values γ·LR(z) strictly below LR(x), found by binary search:
O((N + |Z|) log |Z|) time and O(N + |Z|) memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from pydantic import Field, ValidationInfo, field_validator
from scipy import stats

from auditml.attacks.base import (
    AttackSettings,
    AuditTarget,
    MembershipAttack,
    MissingResourceError,
    ReferenceModels,
)
from auditml.attacks.signals import true_class_log_probs
from auditml.data import ArrayDataset
from auditml.errors import AuditMLError
from auditml.metrics import roc_auc
from auditml.models import predict_logits

RmiaMode = Literal["offline", "online"]
RmiaSetting = Literal["auto", "offline", "online"]

OFFLINE_A_CANDIDATES: tuple[float, ...] = tuple(round(0.1 * step, 1) for step in range(11))
"""The values of ``a`` tried by :func:`tune_offline_a`, as in the reference code."""

FALLBACK_OFFLINE_A = 0.3
"""``a`` when it cannot be tuned: the reference code's default ``offline_a``."""

DEFAULT_TEMPERATURE = 2.0
"""The softmax temperature of the signal by default (module docstring, Defaults)."""

_TINY = np.finfo(np.float64).tiny


class RmiaCoreSettings(AttackSettings):
    """The settings of RMIA's test, whatever its signal Pr(x | θ)."""

    mode: RmiaSetting = Field(
        default="auto", description="online (Pr(x) from all reference models), offline (OUT "
        "models only, with the a approximation) or auto: online when every audited example has "
        "an IN and an OUT reference model, else offline (measured: module docstring, Defaults)",
    )
    a: float | None = Field(
        default=None, ge=0.0, le=1.0, allow_inf_nan=False,
        description="offline Pr_IN ≈ a·Pr_OUT + (1 − a); null = tuned on the reference models",
    )
    gamma: float = Field(
        default=1.0, gt=0.0, allow_inf_nan=False,
        description="x dominates z when LR(x) / LR(z) > gamma; with ties broken by LR(x) it "
        "changes the score's scale, never the ranking (module docstring, Ties)",
    )

    @field_validator("a")
    @classmethod
    def _offline_only(cls, a: float | None, info: ValidationInfo) -> float | None:
        if a is not None and info.data.get("mode") == "online":
            raise ValueError("a is used only with mode='offline'; remove it or set mode: offline")
        return a


class RmiaSettings(RmiaCoreSettings):
    temperature: float = Field(
        default=DEFAULT_TEMPERATURE, gt=0.0, allow_inf_nan=False,
        description="Pr(x | θ) = softmax(logits / temperature)[y]; above 1 keeps confident "
        "predictions from rounding to probability 1 (measured: module docstring, Defaults)",
    )


class RmiaAttack(MembershipAttack):
    """Pairwise likelihood ratios against population samples (Zarifzadeh et al. 2024)."""

    name = "mia_rmia"
    Settings = RmiaSettings
    requires = frozenset({"reference", "population"})

    def _fit(self, target: AuditTarget) -> None:
        reference, population = target.reference, target.population
        if reference is None or population is None:  # fit() has checked; this narrows types
            raise MissingResourceError(f"{self.name} needs reference models and population data")
        keep = self.reference_keep(target)
        if len(population) == 0:
            raise MissingResourceError(f"{self.name} needs at least one population example, got 0")
        self._keep = keep
        self._mode, self._mode_reason = choose_mode(self.params.mode, keep, self.params.a)
        self._reference_x = self._reference_probs(reference, target.examples)
        self._reference_z = self._reference_probs(reference, population)
        self._tuning: OfflineATuning | None = None
        self._a: float | None = None
        if self._mode == "offline":
            if self.params.a is None:
                self._tuning = tune_offline_a(
                    self._reference_x, keep, self._reference_z, gamma=self.params.gamma
                )
                self._a = self._tuning.a
            else:
                self._a = self.params.a

    @property
    def mode(self) -> RmiaMode:
        """The mode the attack runs in (``auto`` resolved by :func:`choose_mode`)."""
        _ = self.target  # raises NotFittedError before fit
        return self._mode

    @property
    def offline_a(self) -> float | None:
        """The ``a`` the offline attack uses (tuned when the setting is None); None online."""
        _ = self.target  # raises NotFittedError before fit
        return self._a

    @property
    def offline_a_tuning(self) -> OfflineATuning | None:
        """How ``a`` was tuned; None when it was given or the mode is online."""
        _ = self.target  # raises NotFittedError before fit
        return self._tuning

    def fitted_values(self) -> dict[str, Any]:
        """The mode used and why; offline, the ``a`` used and whether it was given, tuned or
        the fallback."""
        if self._target is None:  # not fitted yet
            return {}
        values: dict[str, Any] = {"mode": self._mode, "mode_reason": self._mode_reason}
        if self._mode != "offline":
            return values
        tuning = self.offline_a_tuning
        source = "given" if tuning is None else (
            "tuned" if tuning.played_model is not None else "fallback"
        )
        values.update({"a": self.offline_a, "a_source": source})
        if tuning is not None and tuning.auc_by_a:
            values["auc_by_a"] = {repr(a): auc for a, auc in tuning.auc_by_a.items()}
        return values

    def score(self) -> np.ndarray:
        target = self.target
        population = target.population
        if population is None:  # fit() has checked; this narrows the type
            raise MissingResourceError(f"{self.name} needs population data")
        target_x = self._target_probs(target, audited=True)
        target_z = self._target_probs(target, audited=False)
        return rmia_scores(
            target_x, self._reference_x, self._keep, target_z, self._reference_z,
            mode=self._mode, a=self._a, gamma=self.params.gamma,
        )

    def _reference_probs(self, reference: ReferenceModels, data: ArrayDataset) -> np.ndarray:
        """Pr(x | θ_k) ``(K, len(data))`` of every reference model: p_y at the temperature."""
        temperature = self.params.temperature
        return true_class_probs(reference.logits(data.x) / temperature, np.asarray(data.y))

    def _target_probs(self, target: AuditTarget, *, audited: bool) -> np.ndarray:
        """Pr(x | θ) of the target on the audited examples (``audited``) or the population."""
        temperature = self.params.temperature
        if audited:
            logits, labels = target.logits(), target.examples.y
        else:
            assert target.population is not None  # fit checked it
            population = target.population
            logits = predict_logits(target.model, population.x, device=target.device)
            labels = population.y
        return true_class_probs(logits / temperature, np.asarray(labels))


def choose_mode(
    mode: RmiaSetting, keep: np.ndarray, a: float | None = None
) -> tuple[RmiaMode, str]:
    """The mode RMIA runs in when ``mode`` is asked for, given the reference models' ``keep``
    matrix ``(K, N)`` and the ``a`` setting, and the reason, in words.

    ``auto`` is online when every audited example has at least one IN and one OUT reference
    model, so Pr(x) averages both sides as the paper's online attack does; otherwise (one
    reference model, an unbalanced keep matrix) offline, whose approximation needs OUT models
    only. A given ``a`` (used only offline) makes ``auto`` offline.
    """
    if mode != "auto":
        return mode, "as configured"
    if a is not None:
        return "offline", "auto: a is given, and only the offline mode uses it"
    membership = np.asarray(keep, dtype=bool)
    if membership.any(axis=0).all() and (~membership).any(axis=0).all():
        return "online", (
            "auto: every audited example has IN and OUT reference models, so Pr(x) is their "
            "mean (online)"
        )
    return "offline", (
        "auto: some audited example lacks an IN or an OUT reference model, so Pr(x) comes from "
        "the OUT models and the a approximation (offline)"
    )


def true_class_probs(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """p_y(x) from logits ``(..., N, C)`` and labels ``(N,)``: ``(..., N)`` in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.broadcast_to(np.asarray(labels), logits.shape[:-1])
    return np.exp(true_class_log_probs(logits, labels)[1])


@dataclass(frozen=True)
class OfflineATuning:
    """How ``a`` was chosen: ``auc_by_a`` maps each tried a to the AUC of the simulated attack
    on reference model ``played_model``; both are empty/None when the fallback was used."""

    a: float
    played_model: int | None = None
    auc_by_a: dict[float, float] = field(default_factory=dict)


def tune_offline_a(
    reference_prob_x: ArrayLike,
    keep: ArrayLike,
    reference_prob_z: ArrayLike,
    *,
    gamma: float = 1.0,
) -> OfflineATuning:
    """Choose the offline ``a`` by attacking reference model 0 with the other reference models.

    The models used as references exclude model 0 and its complementary partner (a model whose
    keep row is the negation of model 0's): with the partner, the set of OUT models of an
    example would depend on the very membership being guessed. Every a of
    :data:`OFFLINE_A_CANDIDATES` is tried; the one with the highest AUC on model 0's keep row
    wins (the smallest on ties). Falls back to :data:`FALLBACK_OFFLINE_A` when no model is left
    or model 0 trained on all or none of the examples. See the module docstring for the source.
    """
    probs_x, membership, probs_z = _check_references(reference_prob_x, keep, reference_prob_z)
    played = 0
    row = membership[played]
    others = [
        k for k in range(len(membership))
        if k != played and not np.array_equal(membership[k], ~row)
    ]
    if not others or row.all() or not row.any():
        return OfflineATuning(FALLBACK_OFFLINE_A)
    aucs: dict[float, float] = {}
    for a in OFFLINE_A_CANDIDATES:
        scores = rmia_scores(
            probs_x[played], probs_x[others], membership[others], probs_z[played],
            probs_z[others], mode="offline", a=a, gamma=gamma,
        )
        aucs[a] = roc_auc(scores, row)
    best = max(OFFLINE_A_CANDIDATES, key=lambda a: (aucs[a], -a))
    return OfflineATuning(best, played, aucs)


def rmia_scores(
    target_prob_x: ArrayLike,
    reference_prob_x: ArrayLike,
    keep: ArrayLike,
    target_prob_z: ArrayLike,
    reference_prob_z: ArrayLike,
    *,
    mode: RmiaMode,
    a: float | None,
    gamma: float,
    break_ties: bool = True,
) -> np.ndarray:
    """RMIA scores ``(N,)`` in [0, 1] (see the module docstring for the math).

    ``target_prob_x`` ``(N,)`` and ``reference_prob_x`` ``(K, N)``: Pr(x | θ) of the target and
    of K reference models on the audited examples; ``keep`` ``(K, N)`` bool, ``keep[k, i]`` =
    model k trained on example i; ``target_prob_z`` ``(Z,)`` and ``reference_prob_z`` ``(K, Z)``:
    the same on population examples. ``a`` in [0, 1] is required in the offline mode and
    ignored in the online one; ``gamma`` > 0. Higher = more likely a member.

    With ``break_ties`` (the default) the score is ``(wins + r / (N + 1)) / (|Z| + 1)``, with
    ``wins`` the number of population examples x dominates and ``r`` the rank of LR(x) among
    the N audited examples: the paper's ordering, its ties broken by LR(x) (module docstring,
    "Ties"). Without it, the paper's fraction ``wins / |Z|``.
    """
    probs_x, membership, probs_z = _check_references(reference_prob_x, keep, reference_prob_z)
    target_x = _check_probs(target_prob_x, "target_prob_x", probs_x.shape[1:])
    target_z = _check_probs(target_prob_z, "target_prob_z", probs_z.shape[1:])
    if not (np.isfinite(gamma) and gamma > 0):
        raise AuditMLError(f"`gamma` must be a positive number, got {gamma}.")
    if mode == "online":
        marginal_x = probs_x.mean(axis=0)
        marginal_z = probs_z.mean(axis=0)
    elif mode == "offline":
        if a is None or not 0.0 <= a <= 1.0:
            raise AuditMLError(f"`a` must be in [0, 1] in the offline mode, got {a}.")
        out = ~membership
        count = out.sum(axis=0)
        mean_out = np.where(out, probs_x, 0.0).sum(axis=0) / np.maximum(count, 1)
        if (count == 0).any():
            mean_in = np.where(membership, probs_x, 0.0).sum(axis=0) / np.maximum(
                membership.sum(axis=0), 1
            )
            mean_out = np.where(count > 0, mean_out, _out_from_in(mean_in, a))
        marginal_x = _offline_marginal(mean_out, a)
        marginal_z = _offline_marginal(probs_z.mean(axis=0), a)
    else:
        raise AuditMLError(f"`mode` must be 'offline' or 'online', got {mode!r}.")
    ratio_x = target_x / np.maximum(marginal_x, _TINY)
    ratio_z = target_z / np.maximum(marginal_z, _TINY)
    thresholds = np.sort(gamma * ratio_z)
    # side="left": the number of thresholds strictly below ratio_x, i.e. of z with
    # LR(x) > γ·LR(z); a tie is not a win, as "LR(x) / LR(z) > γ" demands.
    wins = np.searchsorted(thresholds, ratio_x, side="left")
    if not break_ties:
        return wins / len(thresholds)
    # Within each level of wins, order by LR(x) (module docstring, "Ties"): its rank among the
    # audited examples, scaled into (0, 1), never reaches the next level, and equal LR(x) stay
    # equal. Ranks rather than a squashed LR(x), which would round to 1 for large ratios.
    within = stats.rankdata(ratio_x, method="average") / (len(ratio_x) + 1)
    return (wins + within) / (len(thresholds) + 1)


def _offline_marginal(mean_out: np.ndarray, a: float) -> np.ndarray:
    return 0.5 * ((1.0 + a) * mean_out + (1.0 - a))


def _out_from_in(mean_in: np.ndarray, a: float) -> np.ndarray:
    """Pr_OUT from Pr_IN by inverting Pr_IN = a·Pr_OUT + (1 − a), clipped to [0, 1]."""
    # a = 0 cannot be inverted (Pr_IN = 1 whatever Pr_OUT); the reference code inverts with 0.3.
    slope = a if a > 0 else FALLBACK_OFFLINE_A
    return np.clip((mean_in - (1.0 - slope)) / slope, 0.0, 1.0)


def _check_references(
    reference_prob_x: ArrayLike, keep: ArrayLike, reference_prob_z: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    probs_x = _check_probs(reference_prob_x, "reference_prob_x", None)
    if probs_x.shape[0] == 0:
        raise MissingResourceError("RMIA needs at least one reference model, got 0.")
    probs_z = _check_probs(reference_prob_z, "reference_prob_z", None)
    if probs_z.shape[0] != probs_x.shape[0]:
        raise AuditMLError(
            f"`reference_prob_z` must have one row per reference model ({probs_x.shape[0]}), "
            f"got shape {probs_z.shape}."
        )
    if probs_z.shape[1] == 0:
        raise MissingResourceError("RMIA needs at least one population example, got 0.")
    membership = np.asarray(keep)
    if membership.shape != probs_x.shape:
        raise AuditMLError(
            f"`keep` must be (models, examples) = {probs_x.shape}, got shape {membership.shape}."
        )
    if membership.dtype != bool:
        if not np.isin(membership, (0, 1)).all():
            raise AuditMLError("`keep` must hold booleans or 0/1.")
        membership = membership.astype(bool)
    return probs_x, membership, probs_z


def _check_probs(values: ArrayLike, name: str, shape: tuple[int, ...] | None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if shape is None and array.ndim != 2:
        raise AuditMLError(f"`{name}` must be 2-D (models, examples), got shape {array.shape}.")
    if shape is not None and array.shape != shape:
        raise AuditMLError(f"`{name}` must have shape {shape}, got {array.shape}.")
    bad = array[~((array >= 0) & (array <= 1))]  # NaN fails both comparisons
    if bad.size:
        raise AuditMLError(f"`{name}` must hold probabilities in [0, 1], got {bad.flat[0]}.")
    return array
