"""Membership-inference metrics: (scores, is_member) in, numbers out. Pure numpy, no I/O.

Scores are one per audited example, higher meaning "more likely a member"; ``is_member`` is the
truth. :func:`membership_metrics` computes everything an audit records; the functions it builds on
are importable on their own.
"""

from auditml.metrics.bootstrap import (
    MembershipIntervals,
    mean_membership_intervals,
    membership_intervals,
)
from auditml.metrics.breakdown import most_exposed_members, per_class_metrics
from auditml.metrics.dp.gdp import (
    GaussianDPEstimate,
    GaussianDPLowerBound,
    gdp_epsilon,
    gdp_epsilon_estimate,
    gdp_estimate_interval,
    gdp_lower_bound,
)
from auditml.metrics.dp.one_run_epsilon import (
    OneRunBound,
    one_run_audit,
    one_run_epsilon_lower_bound,
)
from auditml.metrics.dp.one_run_fdp import (
    FDPAudit,
    FDPClaimTest,
    fdp_audit,
    fdp_claim_test,
    fdp_epsilon_audit,
    fdp_epsilon_lower_bound,
)
from auditml.metrics.dp.one_run_gaussian import GaussianOneRunBound, gaussian_one_run_audit
from auditml.metrics.dp.thresholds import (
    DEFAULT_STRATEGY,
    BonferroniAllScores,
    BonferroniHull,
    Explicit,
    MultiSplit,
    Split,
    ThresholdStrategy,
)
from auditml.metrics.dp.tradeoff import (
    TradeoffCurve,
    approximate_dp_tradeoff,
    claimed_tradeoff,
    gaussian_tradeoff,
    profile_tradeoff,
)
from auditml.metrics.dp.trials_epsilon import EpsilonLowerBound, epsilon_lower_bound
from auditml.metrics.exposure import (
    ExposureEstimate,
    ExtractionRate,
    estimated_exposure,
    exposure,
    extraction_rate,
)
from auditml.metrics.roc import (
    MetricsInputError,
    RocCurve,
    advantage,
    check_scores,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
    tpr_at_fprs,
)
from auditml.metrics.singled_out import (
    SINGLED_OUT_FPR,
    SingledOut,
    members_singled_out,
)
from auditml.metrics.summary import DEFAULT_FPRS, MembershipMetrics, membership_metrics
from auditml.metrics.threshold import CalibratedAccuracy, best_threshold, calibrated_accuracy

__all__ = [
    "DEFAULT_FPRS",
    "DEFAULT_STRATEGY",
    "SINGLED_OUT_FPR",
    "BonferroniAllScores",
    "BonferroniHull",
    "CalibratedAccuracy",
    "EpsilonLowerBound",
    "Explicit",
    "ExposureEstimate",
    "ExtractionRate",
    "FDPAudit",
    "FDPClaimTest",
    "GaussianDPEstimate",
    "GaussianDPLowerBound",
    "GaussianOneRunBound",
    "MembershipIntervals",
    "MembershipMetrics",
    "MetricsInputError",
    "MultiSplit",
    "OneRunBound",
    "RocCurve",
    "SingledOut",
    "Split",
    "ThresholdStrategy",
    "TradeoffCurve",
    "advantage",
    "approximate_dp_tradeoff",
    "best_threshold",
    "calibrated_accuracy",
    "check_scores",
    "claimed_tradeoff",
    "epsilon_lower_bound",
    "estimated_exposure",
    "exposure",
    "extraction_rate",
    "fdp_audit",
    "fdp_claim_test",
    "fdp_epsilon_audit",
    "fdp_epsilon_lower_bound",
    "gaussian_one_run_audit",
    "gaussian_tradeoff",
    "gdp_epsilon",
    "gdp_epsilon_estimate",
    "gdp_estimate_interval",
    "gdp_lower_bound",
    "mean_membership_intervals",
    "members_singled_out",
    "membership_intervals",
    "membership_metrics",
    "most_exposed_members",
    "one_run_audit",
    "one_run_epsilon_lower_bound",
    "per_class_metrics",
    "profile_tradeoff",
    "roc_auc",
    "roc_curve",
    "tpr_at_fpr",
    "tpr_at_fprs",
]
