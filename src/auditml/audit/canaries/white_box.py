"""White-box canary audits: DP-SGD's own gradient canaries under two threat models.

Training added m gradient canaries (``training.canaries.kind: gradient``), each by a recorded
fair coin, and recorded what an adversary of each threat model sees of them
(:class:`~auditml.gradient_canary_record.GradientCanaryRecord`):

- ``dp_audit_all_iterates``: every noisy update (the DP-SGD threat model, the one the
  accountant's ε is about); scores are the subsampled-Gaussian likelihood ratios
  (:func:`~auditml.audit.canaries.scores.all_iterates_scores`).
- ``dp_audit_last_iterate``: only the final weights; scores are the weights' movement against
  each canary (:func:`~auditml.audit.canaries.scores.last_iterate_scores`).

Each audit reports, each at :data:`CONFIDENCE` on its own:

- the assumption-free ε lower bound at the run's δ: the largest ε whose (ε, δ)-DP curve the
  f-DP test of Mahloujifar, Melis and Chaudhuri (2024) rejects
  (:func:`auditml.metrics.fdp_epsilon_audit`, best of the fixed grid of guess counts of
  Steinke, Nasr and Jagielski's :func:`auditml.metrics.one_run_audit`, Bonferroni). It holds
  for every (ε, δ)-DP algorithm and has no ``2 m δ`` term, so it is higher than Steinke et
  al.'s when ``m δ`` is not small; the record's ``by_score`` names the ``method``;
- for a DP run, the test of the whole privacy curve the run's accountant claims (Mahloujifar, Melis
  and Chaudhuri 2024; :mod:`auditml.metrics.dp.one_run_fdp`), on guesses fixed before looking at the
  scores: IN on the top :data:`CLAIM_GUESS_FRACTION` of the canaries, OUT on the bottom as many.
  **The verdict is this test alone**: ``violation`` is wrong with probability at most 5 % when the
  claim holds. (It needs no second test: a rejected (ε, δ) curve implies a rejected claimed curve,
  which lies above it.) With it, the ε lower bound within the DP-SGD family
  (:mod:`auditml.metrics.dp.one_run_fdp_family`): a bound that assumes the run's curve is DP-SGD's
  at its sampling rate and steps for some noise level, labelled so wherever it is shown.
- for a DP run audited under all iterates with Dirac canaries, the **mechanism check**
  (:func:`check_mechanism`): an upper confidence bound on the noise the sums really carry, read
  off the canaries training never added, and (where the run recorded its real batch sizes) a
  lower one on its real sampling rate (:mod:`auditml.metrics.dp.mechanism_check`); then the true ε
  of DP-SGD at those bounds, from below (a bound within the DP-SGD family). It flags the run
  when that ε exceeds the claim. It is a second test, so the verdict splits its 5 %:
  :data:`CLAIM_TEST_LEVEL` to the curve test, :data:`MECHANISM_CHECK_LEVEL` to the mechanism
  check (fixed in advance; its bounds rest on tens of thousands of observations, so 1 % costs
  them almost nothing). ``violation`` is then wrong with probability at most 5 % when the claim
  holds: under a correct mechanism the noise is σ and the rate q, and the check flags only
  when its bounds put the noise below σ or the rate above q.
- for a DP run, **every assumption of the accountant** (:mod:`~auditml.audit.canaries.
  assumptions`): Poisson sampling (the loader, the batch sizes), the rate, the steps, the
  normalisation, the model's hidden state. A failed check is a failure of the claim (the
  mechanism that ran is not the one the accountant analysed), so ``violation`` is true then
  too. The exact checks have no error probability; the statistical ones (batch sizes, and the
  rate where the mechanism check did not measure it) take :data:`ASSUMPTION_CHECK_LEVEL` of the
  5 % when they run, from the curve test's share (:func:`claim_test_level`).

Why one fixed guess count for the test: the recursion averages over all m canaries, so curves
with a Gaussian-like tail are tested best with a moderate share of guesses; simulating the
subsampled Gaussian at m = 1000 (benchmarks/catch_bugs.py, docs) 10 % IN + 10 % OUT was the
most powerful single choice at claimed ε = 1 to 4, and a grid would pay a Bonferroni factor.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np

from auditml.audit.canaries.assumptions import (
    ASSUMPTION_CHECK_LEVEL,
    check_assumptions,
    statistical_checks,
)
from auditml.audit.canaries.base import (
    CanaryAuditKind,
    CanaryEvidence,
    PrivacyClaim,
    gaussian_bound,
)
from auditml.audit.canaries.scores import (
    all_iterates_scores,
    estimate_noise_multiplier,
    last_iterate_scores,
)
from auditml.errors import AuditMLError
from auditml.gradient_canary_record import GradientCanaryRecord, tensor_owners
from auditml.metrics import claimed_tradeoff, fdp_audit, fdp_epsilon_audit
from auditml.metrics.dp.mechanism_check import (
    RateBound,
    noise_upper_bound,
    sample_rate_lower_bound,
    sensitivity_lower_bound,
)
from auditml.metrics.dp.one_run_fdp_family import (
    mechanism_epsilon_lower_bound,
    noise_family_epsilon_lower_bound,
)
from auditml.records import AssumptionCheck, CanaryRecord

CONFIDENCE = 0.95
MECHANISM_CHECK_LEVEL = 0.01
"""The mechanism check's error level, taken from the curve test's share of 1 − CONFIDENCE."""


def claim_test_level(*, mechanism_check: bool, assumption_checks: bool) -> float:
    """The curve test's error level: 1 − :data:`CONFIDENCE` less the shares of the other tests
    that run beside it (the mechanism check's, the statistical assumption checks'), so that all
    of them together are wrong with probability at most 1 − CONFIDENCE (Bonferroni)."""
    return (1 - CONFIDENCE - MECHANISM_CHECK_LEVEL * mechanism_check
            - ASSUMPTION_CHECK_LEVEL * assumption_checks)

CLAIM_GUESS_FRACTION = 0.1
"""The claim test guesses IN on this share of the canaries (highest scores), OUT on as many."""
# A run whose sums carry (almost) no noise still gets finite scores: in units of C.
_NOISE_FLOOR = 1e-3


class GradientCanaryAudit(CanaryAuditKind):
    """Base of the white-box audits: subclasses say which threat model and how it scores."""

    threat_model: ClassVar[str]

    @abstractmethod
    def scores(self, record: GradientCanaryRecord) -> np.ndarray:
        """One score per canary, higher = more likely included."""

    def run(self, evidence: CanaryEvidence) -> CanaryRecord:
        record = evidence.gradient_canaries
        if record is None:
            raise AuditMLError(
                f"{self.name} needs gradient canaries, and this run has none: set "
                "training.canaries: {count: 1000, kind: gradient} (with training.dp.enabled) "
                "and train again"
            )
        scores = self.scores(record)
        bound = fdp_epsilon_audit(
            scores, record.included, delta=evidence.delta, confidence=CONFIDENCE
        )
        claim_test: dict[str, Any] | None = None
        mechanism: dict[str, Any] | None = None
        assumptions: list[AssumptionCheck] | None = None
        violation: bool | None = None
        if evidence.claim is not None:
            mechanism = self.mechanism_check(record, evidence.claim)
            rate = _measured_rate(mechanism)
            level = claim_test_level(
                mechanism_check=mechanism is not None,
                assumption_checks=statistical_checks(
                    record, evidence.claim, rate_measured=rate is not None) > 0,
            )
            claim_test = check_claim(scores, record.included, evidence.claim,
                                     confidence=1 - level)
            assumptions = check_assumptions(record, evidence.claim, rate=rate)
            violation = bool(claim_test["violation"]) or bool(
                mechanism and mechanism["violation"]) or any(
                check.status == "failed" for check in assumptions)
        return CanaryRecord(
            attack=self.name,
            canaries=record.count,
            included=int(record.included.sum()),
            delta=evidence.delta,
            confidence=CONFIDENCE,
            epsilon_lower_bound=bound.epsilon,
            best_score=self.threat_model,
            max_epsilon=bound.max_epsilon,
            by_score={self.threat_model: bound.to_dict()},
            run=evidence.run_facts,
            threat_model=self.threat_model,  # type: ignore[arg-type]
            claim_test=claim_test,
            mechanism_check=mechanism,
            violation=violation,
            assumptions=assumptions,
            gaussian_bound=gaussian_bound({self.threat_model: scores}, record.included,
                                          delta=evidence.delta, confidence=CONFIDENCE),
        )

    def mechanism_check(
        self, record: GradientCanaryRecord, claim: PrivacyClaim
    ) -> dict[str, Any] | None:
        """The mechanism check where this threat model sees the noisy sums (None elsewhere)."""
        return None


class AllIteratesAudit(GradientCanaryAudit):
    name = "dp_audit_all_iterates"
    threat_model = "all_iterates"

    def scores(self, record: GradientCanaryRecord) -> np.ndarray:
        # The noise the sums carry, not the claimed σ: see auditml.audit.canaries.scores.
        noise = estimate_noise_multiplier(record.observations, clip=record.max_grad_norm)
        return all_iterates_scores(
            record.observations, noise_multiplier=max(noise, _NOISE_FLOOR),
            sample_rate=record.sample_rate, clip=record.max_grad_norm,
        )

    def mechanism_check(
        self, record: GradientCanaryRecord, claim: PrivacyClaim
    ) -> dict[str, Any] | None:
        return check_mechanism(record, claim)


class LastIterateAudit(GradientCanaryAudit):
    name = "dp_audit_last_iterate"
    threat_model = "last_iterate"

    def scores(self, record: GradientCanaryRecord) -> np.ndarray:
        return last_iterate_scores(record.initial, record.final)


def _measured_rate(mechanism: dict[str, Any] | None) -> RateBound | None:
    """The mechanism check's bound on the real sampling rate, where it measured one."""
    rate = (mechanism or {}).get("sample_rate")
    if not rate:
        return None
    return RateBound(estimate=rate["estimate"], lower=rate["lower"], batches=rate["batches"],
                     dataset_size=rate["dataset_size"], confidence=rate["confidence"])


def check_claim(
    scores: np.ndarray, included: np.ndarray, claim: PrivacyClaim, *,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The f-DP one-run test of the accountant's claimed curve, as a JSON-ready mapping.

    The curve is rebuilt from the run's own accountant history (:func:`claimed_tradeoff`, the
    accountant's certified (ε, δ) pairs); the guesses are fixed in advance
    (:data:`CLAIM_GUESS_FRACTION` each way). ``epsilon_lower_bound`` is the assumption-free f-DP
    bound at those guesses, ``family_epsilon_lower_bound`` the DP-SGD-family one; each holds at
    ``confidence`` on its own and neither enters the verdict.
    """
    guesses_each = max(1, round(CLAIM_GUESS_FRACTION * len(scores)))
    curve = claimed_tradeoff(claim.history, mechanism=claim.accountant)
    audit = fdp_audit(scores, included, curve, delta=claim.delta, confidence=confidence,
                      k_positive=guesses_each, k_negative=guesses_each)
    test = audit.claim_test
    family = noise_family_epsilon_lower_bound(
        test.correct, test.guesses, test.canaries, claim.history, mechanism=claim.accountant,
        delta=claim.delta, confidence=confidence,
    )
    return {
        "violation": test.violation,
        "p_value": test.p_value,
        "confidence": confidence,
        "correct": test.correct,
        "guesses": test.guesses,
        "allowed_correct": test.allowed_correct,
        "candidates": test.candidates,
        "claim": test.claim,
        "epsilon_lower_bound": audit.epsilon_bound.epsilon,
        "family_epsilon_lower_bound": family.epsilon,
        "family": family.family,
        "family_noise_scale": family.noise_scale,
    }


def check_mechanism(
    record: GradientCanaryRecord, claim: PrivacyClaim, *,
    confidence: float = 1 - MECHANISM_CHECK_LEVEL,
) -> dict[str, Any] | None:
    """The mechanism check, as a JSON-ready mapping; None where it cannot run (random-direction
    canaries, whose noises are correlated, or no canary left out).

    It measures, each part at an equal share of the check's error level
    (:mod:`auditml.metrics.dp.mechanism_check` for each theorem):

    - **noise**: the observations of the canaries training never added, one per coordinate (the
      Dirac coordinates are distinct, so their noises are independent), bound the noise
      multiplier from above;
    - **sampling rate**, where the run recorded its real batch sizes and dataset size and the
      accountant claims one rate: the batch sizes bound the rate from below;
    - **sensitivity**, where included canaries were sampled: how far a sampled canary moves the
      sum, per trainable tensor, bounded from below; above 1 (in units of C) a canary's gradient
      escaped the clipping. Where the canaries went through the optimiser's own clipping, the
      clipping probe is one more such test (:mod:`auditml.training.clipping_probe`): how far the
      probe row moves the sum, which only a clipping of the whole sum puts near 2. Bonferroni
      over the tensors and the probe.

    Then the true ε of DP-SGD at those bounds, from below
    (:func:`~auditml.metrics.dp.one_run_fdp_family.mechanism_epsilon_lower_bound`, with the noise
    divided by the sensitivity where it exceeds 1); ``violation``: that ε exceeds the claimed ε.
    """
    left_out = np.flatnonzero(~record.included)
    if record.direction != "dirac" or len(left_out) == 0 or not record.noise_multiplier > 0:
        return None
    sizes = record.known_batch_sizes()
    known = sizes[sizes >= 0]
    rates = sorted({rate for _, rate, _ in claim.history})
    measure_rate = record.dataset_size > 0 and known.size > 0 and len(rates) == 1
    groups = _sensitivity_groups(record)
    probe = record.probe_sampled is not None and bool(record.probe_sampled.any())
    tests = len(groups) + probe
    parts = 1 + measure_rate + bool(tests)
    each = 1 - (1 - confidence) / parts
    noise = noise_upper_bound(record.observations[:, left_out] / record.max_grad_norm,
                              confidence=each)
    rate = sample_rate_lower_bound(known, dataset_size=record.dataset_size,
                                   confidence=each) if measure_rate else None
    sensitivity = _sensitivity(record, groups, probe, tests, 1 - (1 - each) / max(tests, 1))
    spread = max(1.0, sensitivity["lower"]) if sensitivity else 1.0
    epsilon = mechanism_epsilon_lower_bound(
        claim.history, noise_scale=noise.upper / (record.noise_multiplier * spread),
        sample_rate=None if rate is None else max(rate.lower, 1e-12), delta=claim.delta,
    )
    steps = sum(steps for _, _, steps in claim.history)
    sampled = (f"Poisson sampling at a rate ≥ {rate.lower:.4g}" if rate is not None else
               "Poisson sampling at sample rate " + ", ".join(f"{q:.4g}" for q in rates))
    clipping = (f"per-example sensitivity ≥ {spread:.3g} × the clipping norm "
                f"{record.max_grad_norm:g}" if spread > 1 else
                f"clipping norm {record.max_grad_norm:g}")
    return {
        "violation": epsilon > claim.epsilon,
        "confidence": confidence,
        "noise": {"claimed": record.noise_multiplier, **noise.to_dict()},
        "sample_rate": None if rate is None else {"claimed": rates[0], **rate.to_dict()},
        "sensitivity": sensitivity,
        "family_epsilon_lower_bound": epsilon,
        "family": f"DP-SGD with {sampled}, {steps} steps, {clipping} and noise multiplier ≤ "
                  f"{noise.upper:.4g} (true ε from below: PRV)",
    }


def _sensitivity_groups(record: GradientCanaryRecord) -> list[tuple[int | None, np.ndarray]]:
    """The included canaries that were ever sampled, by trainable tensor (one group when the
    record predates tensor sizes), for the sensitivity part; empty where it cannot run."""
    if not 0 < record.sample_rate < 1:
        return []
    used = record.included & record.sampled.any(axis=0)
    if record.parameter_sizes is None:
        owners = np.zeros(record.count, np.int64)
    else:
        owners, _ = tensor_owners(record.coordinates, record.parameter_sizes)
    return [
        (None if record.parameter_sizes is None else int(k), np.flatnonzero(used & (owners == k)))
        for k in np.unique(owners[used])
    ]


def _sensitivity(
    record: GradientCanaryRecord, groups: list[tuple[int | None, np.ndarray]], probe: bool,
    tests: int, confidence: float,
) -> dict[str, Any] | None:
    """The test whose rows moved the sums most (largest lower bound): each group of sampled
    canaries, and the clipping probe where the record has one (its coin is fair: rate ½);
    ``tests`` of them in all, each at ``confidence``."""
    best: dict[str, Any] | None = None
    for tensor, columns in groups:
        bound = sensitivity_lower_bound(
            record.observations[:, columns] / record.max_grad_norm, record.sampled[:, columns],
            sample_rate=record.sample_rate, confidence=confidence,
        )
        if best is None or bound.lower > best["lower"]:
            best = {"tensor": tensor, "canaries": len(columns), "tensors": len(groups),
                    "tests": tests, "probe": False, **bound.to_dict()}
    if probe and record.probe is not None and record.probe_sampled is not None:
        bound = sensitivity_lower_bound(
            record.probe[:, None], record.probe_sampled[:, None], sample_rate=0.5,
            confidence=confidence,
        )
        if best is None or bound.lower > best["lower"]:
            best = {"tensor": None, "canaries": 0, "tensors": len(groups), "tests": tests,
                    "probe": True, **bound.to_dict()}
    return best
