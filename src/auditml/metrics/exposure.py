"""Secret canaries in a language model: exposure (how high the secret ranks) and extraction rate.

**Exposure** (Carlini, Liu, Erlingsson, Kos and Song 2019, USENIX Security, "The Secret Sharer:
Evaluating and Testing Unintended Memorization in Neural Networks", its definition of exposure): a
canary is a template with a secret ``s[r]`` drawn uniformly from a space R of candidates (e.g. all
10^k digit strings). Rank every candidate by the trained model's score (their log-perplexity; here
any membership score, higher = more likely) and let ``rank(s[r])`` be the secret's 1-based position.
Then

    exposure = log2 |R| − log2 rank(s[r])  =  −log2 Pr_{t ~ U(R)}[score(s[t]) >= score(s[r])],

between 0 (the secret ranks last) and log2 |R| (first). A model that has not memorised the secret
ranks it uniformly at random, and exposure is then at least x with probability 2^−x; exposure
near log2 |R| means the secret can be extracted by ranking the candidates. The second form is the
paper's approximation by sampling, what :func:`estimated_exposure` estimates when R is too large
to enumerate.

**Ties** count against the secret: its rank is the number of candidates (itself included) that
score *at least* as high, so a model that scores every candidate the same gives exposure 0, never
log2 |R|.

**Extraction rate** (Carlini et al. 2019; Panda, Tang, Nasr, Choquette-Choo and Mittal 2025,
"Privacy Auditing of Large Language Models"): the fraction of canaries whose secret the model
reproduces exactly from the prefix by greedy decoding; an exact binomial (Clopper–Pearson)
interval says how far it could be from the model's true rate over the canary distribution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from auditml.metrics.attribute import DEFAULT_CONFIDENCE, accuracy_interval
from auditml.metrics.roc import MetricsInputError, _shown, check_confidence, check_count


@dataclass(frozen=True)
class ExposureEstimate:
    """A canary's exposure from a sample of the candidate space, with its confidence interval.

    ``exposure`` is ``log2 space_size − log2 rank`` with ``rank`` the (estimated) 1-based rank of
    the secret; ``fraction`` the fraction of sampled candidates scoring at least as high as the
    secret, so ``rank = max(1, fraction · space_size)``. With probability at least
    ``confidence`` (over the uniform sample) the true exposure lies in ``[low, high]``.
    ``exact``: the candidates were the whole space (``sample_size == space_size``), so the rank
    is the true rank and ``low == exposure == high``.
    """

    exposure: float
    low: float
    high: float
    rank: float
    fraction: float
    sample_size: int
    space_size: int
    confidence: float
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class ExtractionRate:
    """``extracted`` of ``total`` secrets reproduced; ``rate`` is their fraction and ``[low,
    high]`` its Clopper–Pearson interval at ``confidence``."""

    rate: float
    low: float
    high: float
    extracted: int
    total: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _check_space_size(space_size: object) -> int:
    return check_count(space_size, "space_size", why=" (the number of possible secrets)")


def exposure(rank: float, space_size: int) -> float:
    """``log2(space_size) − log2(rank)``: the exposure of a secret ranked ``rank`` (1 = first)
    among ``space_size`` candidates (Carlini et al. 2019; see the module docstring).

    ``rank`` may be fractional (an estimated rank) but must lie in ``[1, space_size]``;
    ``space_size`` is an integer >= 1 of any size (10^30 candidates is fine: the logarithm of a
    Python int is exact enough). Rank 1 of 10^6 gives log2(10^6) ≈ 19.93.
    """
    size = _check_space_size(space_size)
    if (
        isinstance(rank, (bool, np.bool_))
        or not isinstance(rank, (int, float, np.integer, np.floating))
        or not 1 <= rank <= size  # NaN fails too
    ):
        raise MetricsInputError(
            f"`rank` must be a number in [1, `space_size`] = [1, {size}] (1 = the secret ranks "
            f"first), got {_shown(rank)}."
        )
    return math.log2(size) - math.log2(rank)


def _check_candidates(
    secret_score: object, candidate_scores: ArrayLike
) -> tuple[float, np.ndarray]:
    if (
        isinstance(secret_score, (bool, np.bool_))
        or not isinstance(secret_score, (int, float, np.integer, np.floating))
        or not math.isfinite(secret_score)
    ):
        raise MetricsInputError(
            f"`secret_score` must be a finite real number, got {_shown(secret_score)}."
        )
    try:
        scores = np.asarray(candidate_scores)
    except ValueError as error:  # ragged nested lists
        raise MetricsInputError(f"`candidate_scores` must be a 1-D array: {error}") from None
    if scores.ndim != 1 or len(scores) == 0:
        raise MetricsInputError(
            f"`candidate_scores` must be 1-D with at least one candidate, got shape "
            f"{scores.shape}."
        )
    if scores.dtype.kind not in "iuf" or not np.isfinite(scores).all():
        raise MetricsInputError("`candidate_scores` must be finite real numbers.")
    return float(secret_score), scores.astype(np.float64)


def estimated_exposure(
    secret_score: float,
    candidate_scores: ArrayLike,
    space_size: int,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> ExposureEstimate:
    """A secret's exposure from the scores of candidates drawn uniformly from its space.

    Carlini et al. 2019 ("approximation by sampling"): exposure = −log2 f with f =
    Pr_{t ~ U(R)}[score(s[t]) >= score(s[r])] = rank / |R|. With ``candidate_scores`` the scores
    of n candidates drawn independently and uniformly from R (the secret itself may be among
    them) and c of them scoring at least ``secret_score``, f̂ = c / n and the estimate is
    ``exposure(max(1, f̂ · |R|), |R|)``: the rank can never be below 1, because the secret
    itself scores at least as high as itself.

    **Interval** — c ~ Binomial(n, f), so the Clopper–Pearson interval [f_lo, f_hi] at
    ``confidence`` covers f with probability at least ``confidence``; exposure is decreasing in
    f, and f >= 1/|R| always, so [−log2 f_hi, −log2 max(f_lo, 1/|R|)] covers the true exposure
    with the same probability. c = 0 (no sampled candidate reaches the secret) gives the upper
    end log2 |R|: n samples cannot tell ranks below about |R|/n apart, and the lower end
    −log2(1 − (a/2)^(1/n)) ≈ log2 n − log2 ln(2/a), a = 1 − ``confidence``, is the most the
    sample can certify. Sampling
    without replacement (a subset of R) makes the interval conservative; it is exact binomial
    for sampling with replacement.

    **Exact** — when ``len(candidate_scores) == space_size`` the candidates are taken to be the
    whole space, each once (enumerated): the rank c is the true rank, the interval is the point,
    and ``exact`` is True. Then c >= 1 is required (the secret is one of the candidates). So a
    space no larger than the sample wanted must be enumerated, not sampled: |R| draws with
    replacement repeat some secrets and miss others, and would be misread as the whole space
    (:class:`auditml.audit.canaries.secret.SecretAudit` enumerates such a space).

    Not provided: the paper's other approximation (distribution modelling), which fits a skew-normal
    to the candidates' scores and reads the secret's tail probability off the fit. Beyond the
    sampled range it is the parametric assumption, not the data, that sets the result, and nothing
    bounds its error: it can report an exposure the sample does not support. The interval above only
    claims what n samples can show.
    """
    level = check_confidence(confidence)
    size = _check_space_size(space_size)
    secret, scores = _check_candidates(secret_score, candidate_scores)
    sample_size = len(scores)
    if sample_size > size:
        raise MetricsInputError(
            f"`candidate_scores` holds {sample_size} candidates, more than `space_size` = {size}: "
            "sample at most the whole space (each candidate once), or give the right space size."
        )
    at_least = int(np.count_nonzero(scores >= secret))
    exact = sample_size == size
    if exact:
        if at_least == 0:
            raise MetricsInputError(
                "`candidate_scores` covers the whole space (as many as `space_size`) but none "
                "scores at least `secret_score`: the secret itself must be among the candidates, "
                "with its own score."
            )
        value = exposure(at_least, size)
        return ExposureEstimate(
            exposure=value, low=value, high=value, rank=float(at_least),
            fraction=at_least / sample_size, sample_size=sample_size, space_size=size,
            confidence=level, exact=True,
        )
    fraction = at_least / sample_size
    fraction_low, fraction_high = accuracy_interval(at_least, sample_size, level)
    rank = max(1.0, fraction * size)
    # exposure() takes a rank; a rank from a fraction is clipped to [1, |R|].
    return ExposureEstimate(
        exposure=exposure(min(rank, size), size),
        low=exposure(min(max(1.0, fraction_high * size), size), size),
        high=exposure(min(max(1.0, fraction_low * size), size), size),
        rank=rank,
        fraction=fraction,
        sample_size=sample_size,
        space_size=size,
        confidence=level,
        exact=False,
    )


def extraction_rate(
    extracted: ArrayLike, *, confidence: float = DEFAULT_CONFIDENCE
) -> ExtractionRate:
    """The fraction of secrets extracted, with its Clopper–Pearson interval at ``confidence``.

    ``extracted[i]`` says whether canary ``i``'s secret was reproduced exactly (e.g. greedy
    decoding from its prefix returned the secret; Carlini et al. 2019, Panda et al. 2025). The
    interval ``[B^-1(a/2; c, n-c+1), B^-1(1-a/2; c+1, n-c)]``, ``a = 1 - confidence``, covers the
    true extraction probability with probability at least ``confidence`` when the canaries are
    independent draws of the same design.
    """
    level = check_confidence(confidence)
    try:
        flags = np.asarray(extracted)
    except ValueError as error:  # ragged nested lists
        raise MetricsInputError(f"`extracted` must be a 1-D array: {error}") from None
    if flags.ndim != 1 or len(flags) == 0:
        raise MetricsInputError(
            f"`extracted` must be 1-D with one entry per canary (at least one), got shape "
            f"{flags.shape}."
        )
    if flags.dtype.kind not in "biuf" or (
        flags.dtype.kind != "b" and not np.isin(flags, (0, 1)).all()
    ):
        raise MetricsInputError("`extracted` must hold booleans or 0/1.")
    total = len(flags)
    count = int(flags.astype(bool).sum())
    low, high = accuracy_interval(count, total, level)
    return ExtractionRate(
        rate=count / total, low=low, high=high, extracted=count, total=total, confidence=level
    )
