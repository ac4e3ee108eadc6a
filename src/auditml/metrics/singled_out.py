"""How many members an attack singles out at a low false-positive rate, with exact intervals.

A per-example view of an attack that stays honest whatever produced the scores (two reference
models or 256): it counts examples, and says how sure the count is.

**The threshold.** As :func:`~auditml.metrics.roc.tpr_at_fpr`: ``t*`` is the lowest threshold of
the ROC curve whose false-positive rate on the audited non-members is at most ``fpr``, a tied
group of scores being admitted or excluded as a whole (a threshold cannot split a tie). The
attack singles out the ``k = |{i ∈ P : s_i ≥ t*}|`` members at or above it, and flags
``f = |{j ∈ N : s_j ≥ t*}|`` non-members with them (``f ≤ fpr · |N|``).

**The intervals.** Take ``t*`` as given. If the members are independent draws from the
members' score distribution, each is at or above ``t*`` with the same probability
``TPR(t*)``, so ``k ~ Binomial(|P|, TPR(t*))``; likewise ``f ~ Binomial(|N|, FPR(t*))`` for the
non-members. The Clopper–Pearson interval (C. J. Clopper and E. S. Pearson, "The use of
confidence or fiducial limits illustrated in the case of the binomial", Biometrika 26(4), 1934)

    [ B⁻¹(α/2; k, n − k + 1),  B⁻¹(1 − α/2; k + 1, n − k) ],    α = 1 − confidence,

with ``B⁻¹(q; a, b)`` the q-quantile of the Beta(a, b) distribution (the lower end 0 when
``k = 0``, the upper 1 when ``k = n``; computed by
:func:`~auditml.metrics.attribute.accuracy_interval`, the same interval on an accuracy),
inverts two one-sided binomial tests, so it covers the true rate with probability at least
``confidence`` for every rate: exact, never anti-conservative, however small ``k`` is (no
normal approximation, which fails at the handful of examples a 0.1 % FPR leaves). The FPR
interval is the honest reading of "at most ``fpr``": ``t*`` was chosen on these same
non-members, so their measured rate is optimistic, and the upper end (about 3.7/|N| at 95 %
when ``f = 0``, the "rule of three" of a two-sided interval) is the rate at which a threshold
set this way may flag non-members in general.

**What it does not cover.** The intervals are conditional on ``t*``; the randomness of ``t*``
itself (an order statistic of the non-members) is what the stratified bootstrap of
:func:`~auditml.metrics.bootstrap.membership_intervals` adds to its TPR interval. Both describe
sampling noise of the audited examples, not the randomness of training, and neither is a
privacy bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.attribute import accuracy_interval as clopper_pearson
from auditml.metrics.roc import (
    MetricsInputError,
    _check_fprs,
    _last_allowed,
    _roc_counts,
    check_confidence,
    check_scores,
)

SINGLED_OUT_FPR = 0.001
"""The FPR at which audits count the members singled out (Carlini et al. 2022's 0.1 %)."""


@dataclass(frozen=True)
class SingledOut:
    """The members an attack singles out at ``fpr``; see the module docstring.

    ``threshold`` is ``t*`` (``inf`` when no score is admitted); ``members_found`` and
    ``nonmembers_flagged`` are ``k`` and ``f``; ``tpr_interval`` and ``fpr_interval`` are the
    Clopper–Pearson intervals at ``confidence`` on the rates at ``t*``.
    """

    fpr: float
    threshold: float
    members_found: int
    nonmembers_flagged: int
    members: int
    nonmembers: int
    tpr_interval: tuple[float, float]
    fpr_interval: tuple[float, float]
    confidence: float

    @property
    def members_interval(self) -> tuple[float, float]:
        """``tpr_interval`` in members: how many of ``members`` the attack would find."""
        low, high = self.tpr_interval
        return low * self.members, high * self.members

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``threshold`` null when infinite); inverse of :meth:`from_dict`."""
        return {
            "fpr": self.fpr,
            "threshold": None if np.isinf(self.threshold) else self.threshold,
            "members_found": self.members_found,
            "nonmembers_flagged": self.nonmembers_flagged,
            "members": self.members,
            "nonmembers": self.nonmembers,
            "tpr_interval": list(self.tpr_interval),
            "fpr_interval": list(self.fpr_interval),
            "confidence": self.confidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SingledOut:
        """Inverse of :meth:`to_dict`; raises :class:`MetricsInputError` when malformed."""
        try:
            threshold = data["threshold"]
            tpr_low, tpr_high = (float(end) for end in data["tpr_interval"])
            fpr_low, fpr_high = (float(end) for end in data["fpr_interval"])
            value = cls(
                fpr=float(data["fpr"]),
                threshold=np.inf if threshold is None else float(threshold),
                members_found=int(data["members_found"]),
                nonmembers_flagged=int(data["nonmembers_flagged"]),
                members=int(data["members"]),
                nonmembers=int(data["nonmembers"]),
                tpr_interval=(tpr_low, tpr_high),
                fpr_interval=(fpr_low, fpr_high),
                confidence=float(data["confidence"]),
            )
        except KeyError as error:
            raise MetricsInputError(f"singled-out members lack the key {error}.") from None
        except (TypeError, ValueError) as error:
            raise MetricsInputError(f"singled-out members are malformed: {error}.") from None
        if not (0 <= value.members_found <= value.members
                and 0 <= value.nonmembers_flagged <= value.nonmembers):
            raise MetricsInputError("singled-out members: counts out of range.")
        for name, (low, high) in (("tpr_interval", value.tpr_interval),
                                  ("fpr_interval", value.fpr_interval)):
            if not 0 <= low <= high <= 1:  # NaN fails too
                raise MetricsInputError(
                    f"singled-out members: {name} must be 0 <= low <= high <= 1, got "
                    f"{[low, high]!r}."
                )
        return value


def members_singled_out(
    scores: ArrayLike,
    is_member: ArrayLike,
    *,
    fpr: float = SINGLED_OUT_FPR,
    confidence: float = 0.95,
) -> SingledOut:
    """The members found at or above the lowest threshold whose FPR is at most ``fpr``, with
    Clopper–Pearson intervals on the TPR and FPR there (see the module docstring).

    ``members_found / members`` equals :func:`~auditml.metrics.roc.tpr_at_fpr` of the same
    arguments. A tie at the top that holds a non-member is admitted only when ``fpr`` allows
    all of its non-members, so such a tie singles out no one at a lower ``fpr``.
    """
    target = float(_check_fprs(fpr, "fpr", ndim=0))
    check_confidence(confidence)
    counts = _roc_counts(*check_scores(scores, is_member))
    # The point tpr_at_fpr reads; point 0 (threshold +inf) always qualifies.
    point = int(_last_allowed(counts, np.array([target]))[0])
    found, flagged = int(counts.true_positives[point]), int(counts.false_positives[point])
    return SingledOut(
        fpr=target,
        threshold=float(counts.thresholds[point]),
        members_found=found,
        nonmembers_flagged=flagged,
        members=counts.members,
        nonmembers=counts.nonmembers,
        tpr_interval=clopper_pearson(found, counts.members, float(confidence)),
        fpr_interval=clopper_pearson(flagged, counts.nonmembers, float(confidence)),
        confidence=float(confidence),
    )
