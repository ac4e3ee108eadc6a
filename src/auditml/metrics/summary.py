"""Every membership-inference number for one attack, computed from one ROC curve.

:func:`membership_metrics` is what the audit records; :meth:`MembershipMetrics.to_dict` is its
JSON form (all values finite, so ``json.dumps(..., allow_nan=False)`` accepts it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from numpy.typing import ArrayLike

from auditml.metrics.roc import (
    MetricsInputError,
    _advantage,
    _auc,
    _check_fprs,
    _roc_counts,
    _tpr_at_fprs,
    check_scores,
)
from auditml.metrics.threshold import CalibratedAccuracy, _calibrated_accuracy

# Low FPRs matter most (Carlini et al. 2022): an attack is dangerous when it is confidently right
# about a few members, which AUC hides.
DEFAULT_FPRS: tuple[float, ...] = (0.001, 0.01, 0.1)


@dataclass(frozen=True)
class MembershipMetrics:
    """The metrics of one attack's scores; see :mod:`auditml.metrics.roc` for definitions.

    ``tpr_at_fpr`` maps each FPR target to :func:`~auditml.metrics.roc.tpr_at_fpr`. A target
    below ``1 / nonmembers`` cannot be resolved with this many non-members (see that function).
    ``tied_at_top`` is how many examples share the highest score, ``tied_at_top_nonmembers``
    how many of them are non-members: no threshold splits that group, so when it holds a
    non-member every TPR at an FPR below ``tied_at_top_nonmembers / nonmembers`` is that of
    the threshold above it, 0 (None in records written before these counts existed).
    """

    auc: float
    tpr_at_fpr: dict[float, float]
    advantage: float
    calibrated_accuracy: CalibratedAccuracy
    members: int
    nonmembers: int
    tied_at_top: int | None = None
    tied_at_top_nonmembers: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: FPR keys as strings (``repr`` of the float, e.g. ``"0.001"``)."""
        return {
            "auc": self.auc,
            "tpr_at_fpr": {repr(fpr): tpr for fpr, tpr in self.tpr_at_fpr.items()},
            "advantage": self.advantage,
            "calibrated_accuracy": asdict(self.calibrated_accuracy),
            "members": self.members,
            "nonmembers": self.nonmembers,
            "tied_at_top": self.tied_at_top,
            "tied_at_top_nonmembers": self.tied_at_top_nonmembers,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MembershipMetrics:
        """Inverse of :meth:`to_dict`; raises :class:`MetricsInputError` if a key is missing."""
        try:
            calibrated = data["calibrated_accuracy"]
            metrics = cls(
                auc=float(data["auc"]),
                tpr_at_fpr={float(fpr): float(tpr) for fpr, tpr in data["tpr_at_fpr"].items()},
                advantage=float(data["advantage"]),
                calibrated_accuracy=CalibratedAccuracy(
                    threshold=float(calibrated["threshold"]),
                    accuracy=float(calibrated["accuracy"]),
                    calibration_size=int(calibrated["calibration_size"]),
                    evaluation_size=int(calibrated["evaluation_size"]),
                ),
                members=int(data["members"]),
                nonmembers=int(data["nonmembers"]),
                tied_at_top=_count_or_none(data.get("tied_at_top")),
                tied_at_top_nonmembers=_count_or_none(data.get("tied_at_top_nonmembers")),
            )
            if len(metrics.tpr_at_fpr) != len(data["tpr_at_fpr"]):
                raise ValueError(f"two keys of tpr_at_fpr name the same FPR: "
                                 f"{sorted(data['tpr_at_fpr'])}")
        except KeyError as error:
            raise MetricsInputError(f"membership metrics lack the key {error}.") from None
        except (AttributeError, TypeError, ValueError) as error:
            raise MetricsInputError(f"membership metrics are malformed: {error}.") from None
        # Read from files that may have been edited: rates are rates (an AUC of 7 or NaN was
        # shown by compare as if it were a measurement).
        rates = {"auc": metrics.auc, "advantage": abs(metrics.advantage),
                 "calibrated accuracy": metrics.calibrated_accuracy.accuracy,
                 **{f"TPR at FPR {fpr:g}": tpr for fpr, tpr in metrics.tpr_at_fpr.items()},
                 **{f"FPR {fpr:g}": fpr for fpr in metrics.tpr_at_fpr}}
        for name, value in rates.items():
            if not 0 <= value <= 1:  # NaN fails too
                raise MetricsInputError(f"membership metrics: {name} must be in [0, 1], got "
                                        f"{value!r}.")
        if metrics.members < 0 or metrics.nonmembers < 0:
            raise MetricsInputError("membership metrics: negative counts.")
        tied, tied_nonmembers = metrics.tied_at_top, metrics.tied_at_top_nonmembers
        if (tied is None) != (tied_nonmembers is None) or (tied is not None and not (
            tied_nonmembers is not None and 0 <= tied_nonmembers <= tied
            and 1 <= tied <= metrics.members + metrics.nonmembers
        )):
            raise MetricsInputError(
                "membership metrics: tied_at_top and tied_at_top_nonmembers must both be absent, "
                f"or counts with 0 <= non-members <= tied >= 1, got {tied!r} and "
                f"{tied_nonmembers!r}."
            )
        return metrics


def _count_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def membership_metrics(
    scores: ArrayLike,
    is_member: ArrayLike,
    *,
    fprs: Sequence[float] = DEFAULT_FPRS,
    seed: int = 0,
) -> MembershipMetrics:
    """AUC, TPR at each of ``fprs``, advantage and calibrated accuracy of one attack's scores.

    Inputs are checked once (:func:`~auditml.metrics.roc.check_scores`) and the ROC curve is
    computed once. ``seed`` drives the calibration/evaluation split of
    :func:`~auditml.metrics.threshold.calibrated_accuracy`, which needs at least 2 members and 2
    non-members. Repeated entries of ``fprs`` appear once. The group of examples tied at the
    highest score is counted (``tied_at_top``), and its non-members.
    """
    checked_scores, checked_members = check_scores(scores, is_member)
    targets = _check_fprs(fprs, "fprs", ndim=1)
    counts = _roc_counts(checked_scores, checked_members)
    tprs = _tpr_at_fprs(counts, targets)
    return MembershipMetrics(
        auc=_auc(counts),
        tpr_at_fpr={float(fpr): float(tpr) for fpr, tpr in zip(targets, tprs, strict=True)},
        advantage=_advantage(counts),
        calibrated_accuracy=_calibrated_accuracy(checked_scores, checked_members, seed),
        members=counts.members,
        nonmembers=counts.nonmembers,
        # Point 1 of the curve admits exactly the group at the highest score.
        tied_at_top=int(counts.true_positives[1] + counts.false_positives[1]),
        tied_at_top_nonmembers=int(counts.false_positives[1]),
    )
