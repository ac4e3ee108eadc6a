"""Bootstrap confidence intervals (BCa) for the AUC and the TPR at each FPR target.

**Method.** The stratified nonparametric bootstrap: members and non-members are resampled with
replacement separately, each keeping its size (the audit fixed how many of each it scored), and
the statistic is recomputed on every resample. The interval is Efron's bias-corrected and
accelerated (BCa) percentile interval (B. Efron, "Better Bootstrap Confidence Intervals", JASA
82(397), 1987), with the definitions of ``scipy.stats.bootstrap(method="BCa")`` for several
samples: the bias correction ``z0 = Φ⁻¹(share of resampled values below the estimate, ties
counting one half)``, the acceleration ``a = Σ U³ / (6 (Σ U²)^{3/2})`` from the jackknife
influence values ``U`` of each sample (each scaled by its size), and the interval the
``Φ(z0 + (z0 + z_q) / (1 - a (z0 + z_q)))`` percentiles of the resampled values, q = (1 ± c)/2.

**Assumption.** The audited examples are independent draws from the member and non-member
populations; the bootstrap then approximates the sampling distribution of the statistic. The
coverage is approximate, not guaranteed: BCa is second-order accurate for smooth statistics like
the AUC, while the TPR at a fixed FPR depends on one order statistic of the non-members and its
coverage is poorer when few non-members lie above the threshold (below ~10 at the FPR target).
These intervals describe the sampling noise of the measurement; they are not privacy bounds.

**Computation.** A resample is a vector of multiplicities (how many times each example is drawn),
so the statistics of many resamples are weighted cumulative sums over the scores sorted once:
vectorised over resamples, in blocks that bound memory. The jackknife values have closed forms
(O(n log n) from one sort, not n refits). The cost is O(B · n) for B resamples of n examples:
at 2 × 10⁵ examples it is drawing the resamples (about 40 %: the random draws and counting them)
and a few passes over the multiplicities (about 60 %); the jackknife and the BCa step are under
5 %. Everything is exact integer counting, so the intervals do not depend on how the work is
arranged: the same seed gives the same floats at every size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from auditml.metrics.roc import MetricsInputError, _check_fprs, check_confidence, check_scores
from auditml.metrics.summary import DEFAULT_FPRS

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
# At most this many (resample, example) multiplicities are held at once.
_BLOCK_CELLS = 4_000_000


@dataclass(frozen=True)
class MembershipIntervals:
    """BCa intervals ``(low, high)`` for the AUC and for the TPR at each FPR target.

    ``confidence`` is the nominal two-sided coverage; ``resamples`` and ``seed`` reproduce them.
    """

    auc: tuple[float, float]
    tpr_at_fpr: dict[float, tuple[float, float]]
    confidence: float
    resamples: int
    seed: int
    method: str = "bca"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: FPR keys as strings (``repr`` of the float), intervals as lists."""
        return {
            "auc": list(self.auc),
            "tpr_at_fpr": {repr(fpr): list(pair) for fpr, pair in self.tpr_at_fpr.items()},
            "confidence": self.confidence,
            "resamples": self.resamples,
            "seed": self.seed,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MembershipIntervals:
        """Inverse of :meth:`to_dict`; raises :class:`MetricsInputError` on a malformed mapping."""

        def interval(value: Any, name: str) -> tuple[float, float]:
            low, high = (float(end) for end in value)
            if not 0 <= low <= high <= 1:  # NaN fails too
                raise MetricsInputError(
                    f"intervals: {name} must be 0 <= low <= high <= 1, got {value!r}."
                )
            return low, high

        try:
            return cls(
                auc=interval(data["auc"], "auc"),
                tpr_at_fpr={
                    float(fpr): interval(pair, f"TPR at FPR {fpr}")
                    for fpr, pair in data["tpr_at_fpr"].items()
                },
                confidence=float(data["confidence"]),
                resamples=int(data["resamples"]),
                seed=int(data["seed"]),
                method=str(data.get("method", "bca")),
            )
        except KeyError as error:
            raise MetricsInputError(f"intervals lack the key {error}.") from None
        except (AttributeError, TypeError, ValueError) as error:
            raise MetricsInputError(f"intervals are malformed: {error}.") from None


@dataclass(frozen=True)
class _Sorted:
    """Scores sorted once, and where each member sits among the non-members."""

    members: np.ndarray  # ascending
    nonmembers_descending: np.ndarray
    below: np.ndarray  # per member: non-members strictly below it
    at_or_below: np.ndarray  # per member: non-members at or below it


def _sorted(scores: np.ndarray, is_member: np.ndarray) -> _Sorted:
    members = np.sort(scores[is_member])
    nonmembers = np.sort(scores[~is_member])
    return _Sorted(
        members=members,
        nonmembers_descending=nonmembers[::-1].copy(),
        below=np.searchsorted(nonmembers, members, side="left"),
        at_or_below=np.searchsorted(nonmembers, members, side="right"),
    )


def _cumulative(weights: np.ndarray) -> np.ndarray:
    """Row-wise cumulative sums with a leading 0 column: ``out[:, k]`` sums the first k."""
    out = np.zeros((weights.shape[0], weights.shape[1] + 1), dtype=np.int64)
    np.cumsum(weights, axis=1, out=out[:, 1:])
    return out


def _weighted_statistics(
    data: _Sorted, member_weights: np.ndarray, nonmember_weights: np.ndarray, fprs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(AUC, TPR at each FPR) of each row's weighted sample: shapes (R,) and (R, len(fprs)).

    ``member_weights`` (R × members, ascending order) and ``nonmember_weights`` (R × non-members,
    ascending order) are multiplicities; the definitions are those of :mod:`auditml.metrics.roc`
    applied to the sample in which each example appears that many times.

    Every count is an exact integer, so the order they are summed in does not change a result.
    The cost is a few passes over the weights: their cumulative sums, one gather at the members'
    places (a second only for members tied with a non-member), and for the TPRs a binary search
    per row, not a pass per FPR.
    """
    member_total = member_weights.sum(axis=1)
    nonmember_total = nonmember_weights.sum(axis=1)
    ascending = _cumulative(nonmember_weights)
    # Non-members below each member, ties counting one half (the Mann-Whitney count): twice it
    # is A[below] + A[at_or_below] with A the cumulative non-member weights; the two differ only
    # for members tied with a non-member.
    tied = np.flatnonzero(data.below != data.at_or_below)
    twice_count = 2 * np.einsum("ij,ij->i", member_weights, ascending[:, data.below])
    if len(tied):
        twice_count += np.einsum(
            "ij,ij->i",
            member_weights[:, tied],
            ascending[:, data.at_or_below[tied]] - ascending[:, data.below[tied]],
        )
    auc = twice_count / (2.0 * member_total * nonmember_total)
    # TPR at FPR f: the threshold may go down to just above the first non-member (descending)
    # at which the flagged non-members' share exceeds f; members above that score are found.
    # The flagged count d (the first k non-members, descending) is allowed while d / total <= f;
    # ``limit`` is the largest such integer, computed with the same division so that the
    # comparison is the same one: floor(f · total), moved by one where it rounded across.
    count = nonmember_weights.shape[1]
    limit = np.floor(np.multiply.outer(nonmember_total, fprs)).astype(np.int64)
    limit += (limit + 1) / nonmember_total[:, None] <= fprs
    limit -= limit / nonmember_total[:, None] > fprs
    # The first k non-members (descending) weigh total - A[count - k]: allowed while that is at
    # most the limit, i.e. while A[count - k] >= total - limit; A is sorted along each row.
    needed = nonmember_total[:, None] - limit
    allowed = np.stack([
        count - np.searchsorted(row[:count], wanted, side="left")
        for row, wanted in zip(ascending, needed, strict=True)
    ]) if len(ascending) else np.zeros(limit.shape, np.int64)
    everything = allowed == count
    next_score = data.nonmembers_descending[np.minimum(allowed, count - 1)]
    position = np.searchsorted(data.members, next_score, side="right")
    # Members at or after ``position`` (ascending) are found: sums of the tails, from the
    # lowest position any row needs.
    lowest = int(position.min()) if position.size else 0
    tail = _cumulative(member_weights[:, lowest:])
    rows = np.arange(len(member_total))[:, None]
    found = tail[:, -1:] - tail[rows, position - lowest]
    tprs = np.where(everything, 1.0, found / member_total[:, None])
    return auc, tprs


def _multiplicities(rng: np.random.Generator, rows: int, size: int) -> np.ndarray:
    """``rows`` bootstrap resamples of ``size`` items, as multiplicities (rows × size)."""
    draws = rng.integers(0, size, size=(rows, size))
    # Counted row by row: each count array stays small enough for the cache.
    out = np.empty((rows, size), dtype=np.int64)
    for row, drawn in enumerate(draws):
        out[row] = np.bincount(drawn, minlength=size)
    return out


def _blocks(resamples: int, width: int) -> Iterator[int]:
    block = max(1, _BLOCK_CELLS // max(width, 1))
    for start in range(0, resamples, block):
        yield min(block, resamples - start)


def _jackknife(data: _Sorted, fprs: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Leave-one-out values per sample: ([AUC without each member, … non-member], same for TPRs).

    Closed forms of :func:`_weighted_statistics` with one multiplicity set to 0.
    """
    members, nonmembers = len(data.members), len(data.nonmembers_descending)
    twice_below = (data.below + data.at_or_below).astype(np.float64)
    total = twice_below.sum()
    # Per non-member (ascending): members above it, ties counting one half.
    ascending = data.nonmembers_descending[::-1]
    twice_above = (
        2 * members
        - np.searchsorted(data.members, ascending, side="left")
        - np.searchsorted(data.members, ascending, side="right")
    )
    auc_members = (total - twice_below) / (2.0 * (members - 1) * nonmembers)
    auc_nonmembers = (total - twice_above) / (2.0 * members * (nonmembers - 1))

    def found_above(rank: np.ndarray) -> np.ndarray:
        # Members strictly above the non-member at descending rank ``rank`` (all if past the end).
        inside = rank < nonmembers
        score = data.nonmembers_descending[np.minimum(rank, nonmembers - 1)]
        return np.where(inside, members - np.searchsorted(data.members, score, side="right"),
                        members)

    tpr_members = np.empty((members, len(fprs)))
    tpr_nonmembers = np.empty((nonmembers, len(fprs)))
    ranks = np.arange(1, nonmembers + 1)
    for column, fpr in enumerate(fprs):
        # Without member i: the threshold stays; the TPR loses i if i was found.
        allowed = int((ranks / nonmembers <= fpr).sum())
        found = int(found_above(np.array([allowed]))[0])
        was_found = np.arange(members) >= members - found  # members ascending
        tpr_members[:, column] = (found - was_found) / (members - 1)
        # Without non-member j (descending rank r_j, 0-based): m of the other n - 1 may be
        # flagged; the next one is at rank m, or m + 1 when j itself was among the first m + 1.
        if nonmembers == 1:
            tpr_nonmembers[:, column] = 1.0
            continue
        kept = int((np.arange(1, nonmembers) / (nonmembers - 1) <= fpr).sum())
        own_rank = np.arange(nonmembers)[::-1]  # ascending position -> descending rank
        next_rank = np.where(own_rank <= kept, kept + 1, kept)
        tpr_nonmembers[:, column] = np.where(
            kept == nonmembers - 1, 1.0, found_above(next_rank) / members
        )
    return [auc_members, auc_nonmembers], [tpr_members, tpr_nonmembers]


def _acceleration(jackknife: Sequence[np.ndarray]) -> np.ndarray:
    """BCa acceleration from per-sample jackknife values (arrays of shape (n_k,) + statistic)."""
    cubes, squares = 0.0, 0.0
    for values in jackknife:
        size = values.shape[0]
        influence = (size - 1) * (values.mean(axis=0) - values)
        cubes = cubes + (influence**3).sum(axis=0) / size**3
        squares = squares + (influence**2).sum(axis=0) / size**2
    with np.errstate(divide="ignore", invalid="ignore"):
        acceleration = cubes / (6 * np.asarray(squares) ** 1.5)
    # No jackknife variation (e.g. perfect separation): no acceleration to correct for.
    return np.where(np.asarray(squares) > 0, acceleration, 0.0)


def _bca(
    estimate: np.ndarray, resampled: np.ndarray, acceleration: np.ndarray, confidence: float
) -> np.ndarray:
    """(2, …) BCa interval ends from the estimate (…) and resampled values (B, …)."""
    share_below = ((resampled < estimate).sum(axis=0) + (resampled <= estimate).sum(axis=0)) / (
        2 * resampled.shape[0]
    )
    # All resampled values on one side of the estimate: z0 infinite; clip to the resolution of
    # B resamples rather than return the most extreme value as both ends.
    share_below = np.clip(share_below, 0.5 / resampled.shape[0], 1 - 0.5 / resampled.shape[0])
    bias = special.ndtri(share_below)
    ends = []
    for tail in ((1 - confidence) / 2, (1 + confidence) / 2):
        z = bias + special.ndtri(tail)
        level = special.ndtr(bias + z / (1 - acceleration * z))
        ends.append(level)
    levels = np.stack(ends)
    out = np.empty((2, *estimate.shape))
    flat_values = resampled.reshape(resampled.shape[0], -1)
    flat_levels = levels.reshape(2, -1)
    flat_out = out.reshape(2, -1)
    for column in range(flat_values.shape[1]):
        flat_out[:, column] = np.quantile(flat_values[:, column], flat_levels[:, column])
    return out


def membership_intervals(
    scores: ArrayLike,
    is_member: ArrayLike,
    *,
    fprs: Sequence[float] = DEFAULT_FPRS,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MembershipIntervals:
    """BCa bootstrap intervals for the AUC and the TPR at each of ``fprs`` (see the module).

    The estimates they surround are :func:`~auditml.metrics.roc.roc_auc` and
    :func:`~auditml.metrics.roc.tpr_at_fprs` of the same scores. Needs at least 2 members and 2
    non-members (the jackknife leaves one out). ``resamples`` resamples are drawn with
    ``numpy.random.default_rng(seed)``; the same arguments give the same intervals.
    """
    return mean_membership_intervals([(scores, is_member)], fprs=fprs, confidence=confidence,
                                     resamples=resamples, seed=seed)


def mean_membership_intervals(
    runs: Sequence[tuple[ArrayLike, ArrayLike]],
    *,
    fprs: Sequence[float] = DEFAULT_FPRS,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MembershipIntervals:
    """BCa intervals for the mean, over independent runs, of each run's AUC and TPR at each FPR.

    ``runs`` holds one ``(scores, is_member)`` pair per run (e.g. one per training seed, each
    with its own members, non-members and models); the statistic is the mean over runs of the
    AUC (or TPR) of each run's own scores, never a statistic of the scores pooled across runs
    (one run's scores need not be comparable with another's). The resampling is the module's,
    stratified by run as well: each run's members and non-members are resampled separately, and
    a resample's value is the mean over runs of each run's value on its resample. So the
    interval is the sampling noise of the *examples* of the runs given; the runs themselves
    (their training randomness) are held fixed, as more runs would be needed to resample them.
    The acceleration comes from the jackknife of every (run, member or non-member) sample: a
    run's influence values on the mean are its own scaled by 1 / (number of runs), a scale that
    cancels in the acceleration. With one run this is :func:`membership_intervals` (same draws,
    same interval).
    """
    if isinstance(runs, (str, bytes)) or not isinstance(runs, Sequence) or not runs:
        raise MetricsInputError(
            f"`runs` must be a non-empty sequence of (scores, is_member) pairs, got {runs!r}."
        )
    data = [_sorted_run(run) for run in runs]
    targets = _check_fprs(fprs, "fprs", ndim=1)
    targets = np.unique(targets)
    check_confidence(confidence)
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or not (
        10 <= resamples <= 1_000_000
    ):
        raise MetricsInputError(f"`resamples` must be an integer in [10, 1e6], got {resamples!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MetricsInputError(f"`seed` must be a non-negative integer, got {seed!r}.")
    count = len(data)
    ones = [_weighted_statistics(run, np.ones((1, len(run.members)), np.int64),
                                 np.ones((1, len(run.nonmembers_descending)), np.int64), targets)
            for run in data]
    auc = sum(pair[0] for pair in ones) / count
    tprs = sum(pair[1] for pair in ones) / count
    rng = np.random.default_rng(seed)
    auc_values, tpr_values = [], []
    width = max(len(run.members) + len(run.nonmembers_descending) for run in data)
    for rows in _blocks(resamples, width):
        block_auc, block_tprs = np.zeros(rows), np.zeros((rows, len(targets)))
        for run in data:
            run_auc, run_tprs = _weighted_statistics(
                run, _multiplicities(rng, rows, len(run.members)),
                _multiplicities(rng, rows, len(run.nonmembers_descending)), targets,
            )
            block_auc += run_auc
            block_tprs += run_tprs
        auc_values.append(block_auc / count)
        tpr_values.append(block_tprs / count)
    jackknife_auc: list[np.ndarray] = []
    jackknife_tprs: list[np.ndarray] = []
    for run in data:
        run_auc, run_tprs = _jackknife(run, targets)
        jackknife_auc += run_auc
        jackknife_tprs += run_tprs
    auc_interval = _bca(auc[0:1], np.concatenate(auc_values)[:, None],
                        _acceleration([values[:, None] for values in jackknife_auc]), confidence)
    tpr_intervals = _bca(tprs[0], np.concatenate(tpr_values), _acceleration(jackknife_tprs),
                         confidence)
    return MembershipIntervals(
        auc=(float(auc_interval[0, 0]), float(auc_interval[1, 0])),
        tpr_at_fpr={
            float(fpr): (float(tpr_intervals[0, column]), float(tpr_intervals[1, column]))
            for column, fpr in enumerate(targets)
        },
        confidence=float(confidence),
        resamples=int(resamples),
        seed=int(seed),
    )


def _sorted_run(run: tuple[ArrayLike, ArrayLike]) -> _Sorted:
    """One run's scores, checked (at least 2 members and 2 non-members), sorted once."""
    try:
        scores, is_member = run
    except (TypeError, ValueError):
        raise MetricsInputError(
            f"each run must be a (scores, is_member) pair, got {type(run).__name__}."
        ) from None
    checked_scores, checked_members = check_scores(scores, is_member)
    members, nonmembers = int(checked_members.sum()), int((~checked_members).sum())
    if members < 2 or nonmembers < 2:
        raise MetricsInputError(
            "bootstrap intervals need at least 2 members and 2 non-members, got "
            f"{members} and {nonmembers}."
        )
    return _sorted(checked_scores, checked_members)
