"""members_singled_out: the members found at a low FPR, with exact (Clopper–Pearson) intervals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sklearn_metrics

from auditml.metrics import (
    SINGLED_OUT_FPR,
    MetricsInputError,
    SingledOut,
    members_singled_out,
    membership_metrics,
    tpr_at_fpr,
)


def saturated_tie() -> tuple[np.ndarray, np.ndarray]:
    """1,000 members and 1,000 non-members; 30 examples, 2 of them non-members, share the top
    score exactly (as RMIA's fraction gave with γ = 1), the rest are continuous below it."""
    rng = np.random.default_rng(0)
    is_member = np.arange(2000) < 1000
    scores = rng.uniform(0.0, 0.9, 2000) + 0.05 * is_member
    scores[np.r_[0:28, 1000:1002]] = 1.0
    return scores, is_member


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fpr", [0.001, 0.01, 0.05])
def test_agrees_with_sklearn_roc_curve(seed: int, fpr: float) -> None:
    rng = np.random.default_rng(seed)
    is_member = rng.random(3000) < 0.5
    scores = np.round(rng.normal(size=3000) + 0.8 * is_member, 2)  # rounding makes ties
    result = members_singled_out(scores, is_member, fpr=fpr)
    false, true, thresholds = sklearn_metrics.roc_curve(is_member, scores,
                                                        drop_intermediate=False)
    allowed = np.flatnonzero(false <= fpr)
    best = allowed[np.argmax(true[allowed])]
    assert result.members_found == round(true[best] * is_member.sum())
    assert result.nonmembers_flagged == round(false[best] * (~is_member).sum())
    assert result.threshold == thresholds[best] or (best == 0 and np.isinf(result.threshold))
    assert result.members_found / result.members == tpr_at_fpr(scores, is_member, fpr)
    for interval, found, total in ((result.tpr_interval, result.members_found, result.members),
                                   (result.fpr_interval, result.nonmembers_flagged,
                                    result.nonmembers)):
        exact = stats.binomtest(found, total).proportion_ci(0.95, method="exact")
        assert interval == (pytest.approx(exact.low, abs=1e-12),
                            pytest.approx(exact.high, abs=1e-12))


def test_a_saturated_tie_singles_out_no_one_below_its_fpr() -> None:
    scores, is_member = saturated_tie()
    # sklearn's curve has no point between (0, 0) and the whole tie at FPR 2/1000: the TPR at
    # 0.1 % FPR is that of (0, 0); interpolating would credit 14 members the tie cannot give.
    false, true, _ = sklearn_metrics.roc_curve(is_member, scores, drop_intermediate=False)
    assert false[1] == 0.002 and true[1] == 0.028
    result = members_singled_out(scores, is_member, fpr=0.001)
    assert result.members_found == 0 and result.nonmembers_flagged == 0
    assert np.isinf(result.threshold)
    assert result.tpr_interval == (0.0, pytest.approx(1 - 0.025 ** (1 / 1000)))
    assert tpr_at_fpr(scores, is_member, 0.001) == 0.0
    # At 0.2 % the whole tie is admitted with its 2 non-members, and the members down to the
    # next non-member.
    wider = members_singled_out(scores, is_member, fpr=0.002)
    below = scores[~is_member & (scores < 1.0)].max()
    assert wider.nonmembers_flagged == 2
    assert wider.members_found == 28 + ((scores > below) & (scores < 1.0) & is_member).sum()
    metrics = membership_metrics(scores, is_member)
    assert (metrics.tied_at_top, metrics.tied_at_top_nonmembers) == (30, 2)


def test_defaults_and_round_trip() -> None:
    scores, is_member = saturated_tie()
    result = members_singled_out(scores, is_member)
    assert SINGLED_OUT_FPR == 0.001 and result.fpr == 0.001 and result.confidence == 0.95
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["threshold"] is None
    assert SingledOut.from_dict(data) == result
    low, high = result.members_interval
    assert low == 0.0 and high == pytest.approx(result.tpr_interval[1] * 1000)


def test_bad_inputs_name_the_argument() -> None:
    scores, is_member = saturated_tie()
    with pytest.raises(MetricsInputError, match="`fpr` must be in"):
        members_singled_out(scores, is_member, fpr=1.5)
    with pytest.raises(MetricsInputError, match="`confidence` must be in"):
        members_singled_out(scores, is_member, confidence=1.0)
    with pytest.raises(MetricsInputError, match="is_member"):
        members_singled_out(scores, np.ones(2000, bool))
    data = members_singled_out(scores, is_member).to_dict()
    with pytest.raises(MetricsInputError, match="counts out of range"):
        SingledOut.from_dict({**data, "members_found": 1001})
    with pytest.raises(MetricsInputError, match="lack the key"):
        SingledOut.from_dict({key: value for key, value in data.items() if key != "fpr"})
