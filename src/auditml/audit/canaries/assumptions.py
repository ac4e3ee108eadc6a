"""Every assumption the accountant makes, checked against what the loop did.

An accountant's ε (Opacus's RDP or PRV) is the privacy of one mechanism: each step draws a batch
by Poisson sampling at rate q from N examples, sums the examples' clipped gradients, adds
Gaussian noise of std σC, divides by a constant, and steps; the accountant composes exactly the
steps it was told of; nothing else about the data leaves the loop. A loop can add the right noise
and still run another mechanism, for which the claimed ε means nothing. Each check below names
one assumption and the evidence that tests it (:class:`~auditml.records.AssumptionCheck`):

=============== ====================================================== ========================
check           the accountant assumes                                 evidence
=============== ====================================================== ========================
loader          batches are drawn by Poisson sampling                  the loader's sampler
                                                                       (exact, before step 0)
batch_sizes     batch sizes i.i.d. Binomial(N, q)                      the real batch sizes
                                                                       (statistical:
                                                                       :mod:`auditml.metrics.
                                                                       sampling`)
rate            the real sampling rate is the accounted q              the sampler's rate
                                                                       (exact); the batch sizes
                                                                       and N (statistical)
steps           every noisy step is accounted                          noisy steps seen against
                                                                       the accountant's (exact)
updates         the weights change only by the noisy updates           a few coordinates of
                                                                       each tensor, before and
                                                                       after each update
                                                                       (exact for those read)
normalisation   the noisy sum is divided by a constant                 each step's divisor
                                                                       (exact)
clipping        each example's gradient is clipped to norm C before    canaries and the
                the sum                                                clipping probe through
                                                                       the optimiser's clipping
                                                                       (``through_clipping``;
                                                                       the mechanism check);
                                                                       auditml's own clipping
hidden_state    no example's output depends on the others of its       the model's layers; the
                batch; nothing of the data is kept outside the         first batch run twice
                noised gradients                                       (exact)
noise_source    noise from a secure generator (a warning only)         the engine's secure_mode
accountant      the accountant's ε is a certified bound (a warning     the accountant's kind
                only: Opacus's ``gdp`` is an asymptotic approximation)
=============== ====================================================== ========================

A failed check is a failure of the claim: ``not_applicable`` (the mechanism that ran is not the
one the accountant analysed). The exact checks report what the code did, with no error
probability. The statistical ones share :data:`ASSUMPTION_CHECK_LEVEL` of the verdict's 5 %
(Bonferroni between them): under a loop that keeps every assumption they fail with at most that
probability together. Where the literature gives the privacy of what the loop really did, the
check reports it from below: for fixed-size batches in shuffled or fixed order, the lower bound of
Chua et al. (2024) (:func:`auditml.metrics.dp.accounting.shuffle_epsilon_lower_bound`).

What these checks cannot see is listed in the README ("What auditml catches"): they see batch
sizes and one probe batch, not which examples each batch held.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from auditml.audit.canaries.base import PrivacyClaim
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.metrics.dp.accounting import shuffle_epsilon_lower_bound
from auditml.metrics.dp.mechanism_check import RateBound, sample_rate_lower_bound
from auditml.metrics.dp.sampling import poisson_batch_test
from auditml.records import AssumptionCheck, LoopFacts

# Buffers a normalisation layer updates from its batches in training mode (BatchNorm's).
_RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")
ASSUMPTION_CHECK_LEVEL = 0.01
"""The statistical assumption checks' share of the verdict's error level (Bonferroni)."""
# Two divisors differing by less than this share are one constant (float32 sums, 256 coordinates).
_DIVISOR_TOLERANCE = 1e-3
_ASSUMES = {
    "loader": "batches are drawn by Poisson sampling: each example joins each batch "
              "independently",
    "batch_sizes": "batch sizes are independent Binomial(N, q) draws, as Poisson sampling makes "
                   "them",
    "rate": "the real sampling rate is the accounted rate q",
    "steps": "every step that adds noise is accounted",
    "updates": "the weights change only by the noisy updates: no other step or optimiser "
               "trains them",
    "normalisation": "each noisy sum is divided by the same constant, which depends on no example",
    "clipping": "each example's gradient is clipped to norm C before the sum is noised",
    "hidden_state": "no example's output depends on the other examples of its batch, and nothing "
                    "is kept from the data outside the clipped, noised gradients",
    "noise_source": "the noise comes from a cryptographically secure generator",
    "accountant": "the accountant's ε is a certified upper bound",
}


def statistical_checks(
    record: GradientCanaryRecord, claim: PrivacyClaim, *, rate_measured: bool = False
) -> int:
    """How many statistical checks :func:`check_assumptions` runs on ``record`` (0: it uses no
    share of the verdict's error level); ``rate_measured``: a rate bound is passed in."""
    return int(_batch_sizes(record, claim) is not None) + int(
        not rate_measured and _rate_evidence(record, claim) is not None)


def check_assumptions(
    record: GradientCanaryRecord, claim: PrivacyClaim, *,
    level: float = ASSUMPTION_CHECK_LEVEL, rate: RateBound | None = None,
) -> list[AssumptionCheck]:
    """Each assumption of the accountant, checked (module docstring), in a fixed order.

    ``level`` is the statistical checks' joint error level (split equally between them); ``rate``
    a bound on the real sampling rate that another test already made (the mechanism check's),
    used instead of a new one.
    """
    facts = record.loop_facts or LoopFacts()
    tests = statistical_checks(record, claim, rate_measured=rate is not None)
    each = 1 - level / max(tests, 1)
    # Computed once, and only where a check needs it.
    shuffled = functools.cache(functools.partial(_shuffle_bound, record, claim, facts))

    return [
        _loader(facts, shuffled),
        _batch_size_check(record, claim, each, shuffled),
        _rate(record, claim, facts, rate, each),
        _steps(record, claim),
        _updates(record, facts),
        _normalisation(record),
        _clipping(facts),
        _hidden_state(facts),
        _noise_source(facts),
        _accountant(claim.accountant),
    ]


def _check(name: str, status: str, detail: str, **more: object) -> AssumptionCheck:
    """A check's record; every failure here means the claim does not apply."""
    return AssumptionCheck(
        check=name, assumption=_ASSUMES[name], status=status,  # type: ignore[arg-type]
        finding="not_applicable" if status == "failed" else None, detail=detail,
        **more,  # type: ignore[arg-type]
    )


def _loader_rate_differs(facts: LoopFacts, accounted: float | None) -> bool:
    """The Poisson loader's own rate is not the accounted one (both known)."""
    return facts.loader_rate is not None and accounted is not None and not math.isclose(
        facts.loader_rate, accounted, rel_tol=1e-9)


def _claimed_rate(claim: PrivacyClaim) -> float | None:
    rates = {rate for _, rate, _ in claim.history}
    return rates.pop() if len(rates) == 1 else None


def _dataset_size(record: GradientCanaryRecord) -> int | None:
    facts = record.loop_facts
    if record.dataset_size > 0:
        return record.dataset_size
    return facts.dataset_size if facts is not None else None


# -- sampling ---------------------------------------------------------------------------------


def _shuffle_bound(
    record: GradientCanaryRecord, claim: PrivacyClaim, facts: LoopFacts
) -> tuple[float, str] | None:
    """The ε of the loop if its batches were fixed-size and shuffled (or in order), from below,
    and the sentence that says so; None where it does not apply or cannot be computed."""
    rate = _claimed_rate(claim)
    noises = {noise for noise, _, _ in claim.history}
    if rate is None or len(noises) != 1 or claim.delta <= 0:
        return None
    noise = noises.pop()
    in_order = facts.sampling == "in_order"
    steps_per_epoch = facts.steps_per_epoch or max(1, round(1 / rate))
    epochs = record.steps // steps_per_epoch
    if noise <= 0 or epochs < 1:
        return None
    try:
        epsilon = shuffle_epsilon_lower_bound(
            noise_multiplier=noise, steps_per_epoch=1 if in_order else steps_per_epoch,
            epochs=epochs, delta=claim.delta,
        )
    except (ValueError, ArithmeticError, MemoryError):
        return None
    how = ("in the same order every epoch (Gaussian mechanism per epoch)" if in_order else
           f"shuffled each epoch into {steps_per_epoch} batches")
    return epsilon, (
        f"claimed ε = {claim.epsilon:.3g} (Poisson sampling); with fixed-size batches {how}, "
        f"{epochs} epochs at noise multiplier {noise:.3g}, ε ≥ {epsilon:.3g} at δ = "
        f"{claim.delta:g} (lower bound of Chua et al. 2024, for the worst case of any data)"
    )


def _shuffled_or_in_order(facts: LoopFacts) -> bool:
    """Fixed-size batches for which Chua et al.'s bound holds (not weighted: no bound known)."""
    return facts.sampling in ("shuffled", "in_order")


def _loader(
    facts: LoopFacts, shuffled: Callable[[], tuple[float, str] | None]
) -> AssumptionCheck:
    if facts.sampling is None:
        return _check("loader", "not_checked", "the data loader was not seen (pass "
                      "data_loader= to CanaryAudit)")
    if facts.sampling == "poisson":
        return _check("loader", "passed", f"the loader draws {facts.loader}")
    bound = shuffled() if _shuffled_or_in_order(facts) else None
    return _check(
        "loader", "failed",
        f"the loader draws {facts.loader}, not Poisson-sampled batches"
        + ("" if bound is None else f"; {bound[1]}"),
        epsilon_lower_bound=None if bound is None else bound[0],
    )


def _rate_group(record: GradientCanaryRecord, claim: PrivacyClaim) -> tuple[float, np.ndarray]:
    """The rate the most noisy steps were accounted at, and which steps those are. With one rate
    in the history, every step; with several (e.g. Opacus accounting accumulated micro-batches
    at their multiple of the rate), the steps line up one to one with the accountant's when
    their counts agree; else none."""
    single = _claimed_rate(claim)
    if single is not None:
        return single, np.ones(record.steps, bool)
    rates = np.concatenate([np.full(int(steps), rate) for _, rate, steps in claim.history])
    if len(rates) != record.steps:
        return 0.0, np.zeros(record.steps, bool)
    values, counts = np.unique(rates, return_counts=True)
    rate = float(values[np.argmax(counts)])
    return rate, rates == rate


def _batch_sizes(
    record: GradientCanaryRecord, claim: PrivacyClaim
) -> tuple[float, np.ndarray, str] | None:
    """The accounted rate, the known batch sizes of the steps accounted at it, and a phrase
    saying which steps those are; None where fewer than two are known."""
    rate, group = _rate_group(record, claim)
    sizes = record.known_batch_sizes()
    known = sizes[group & (sizes >= 0)]
    if len(known) < 2 or not 0 < rate < 1:
        return None
    which = "" if group.all() else f" (the {int(group.sum())} steps accounted at rate {rate:.4g})"
    return rate, known, which


def _batch_size_check(
    record: GradientCanaryRecord, claim: PrivacyClaim, confidence: float,
    shuffled: Callable[[], tuple[float, str] | None],
) -> AssumptionCheck:
    found = _batch_sizes(record, claim)
    if found is None:
        why = ("the accountant's steps do not line up with the noisy steps seen, and it "
               "accounted several sampling rates" if not _rate_group(record, claim)[1].any() else
               "the loop's batch sizes were not seen (ghost clipping keeps no per-example rows: "
               "pass model= to CanaryAudit to count them)")
        return _check("batch_sizes", "not_checked", why)
    rate, known, which = found
    size = _dataset_size(record)
    test = poisson_batch_test(
        known, sample_rate=rate, dataset_size=size if size and size >= int(known.max()) else None,
        confidence=confidence,
    )
    if not test.rejected:
        return _check("batch_sizes", "passed",
                      f"{test.batches} batch sizes{which} consistent with Poisson sampling (mean "
                      f"{test.mean:.4g}, variance {test.variance:.4g} against "
                      f"{test.expected_variance:.4g}; p = {test.p_value:.2g})",
                      p_value=test.p_value, confidence=confidence)
    # Fixed-size batches: one size over and over (the short last batch of an epoch aside), or
    # sizes that vary less than Poisson sampling makes them.
    fixed = test.failed_form == "fixed_size" or (
        test.failed_form == "dispersion" and test.variance < test.expected_variance)
    bound = shuffled() if fixed else None
    return _check(
        "batch_sizes", "failed",
        test.describe() + which + ("" if bound is None else f"; {bound[1]}"),
        p_value=test.p_value, confidence=confidence,
        epsilon_lower_bound=None if bound is None else bound[0],
    )


def _rate_evidence(
    record: GradientCanaryRecord, claim: PrivacyClaim
) -> tuple[float, np.ndarray, str] | None:
    found = _batch_sizes(record, claim)
    size = _dataset_size(record)
    if found is None or not size or int(found[1].max()) > size:
        return None
    return found


def _rate(
    record: GradientCanaryRecord, claim: PrivacyClaim, facts: LoopFacts,
    bound: RateBound | None, confidence: float,
) -> AssumptionCheck:
    single = _claimed_rate(claim)
    if _loader_rate_differs(facts, single):
        return _check("rate", "failed",
                      f"the Poisson loader draws at rate {facts.loader_rate:.4g}; the accountant "
                      f"was told {single:.4g}")
    evidence = _rate_evidence(record, claim)
    claimed, which = (evidence[0], evidence[2]) if evidence is not None else (single, "")
    if bound is None and evidence is not None:
        bound = sample_rate_lower_bound(evidence[1], dataset_size=int(_dataset_size(record) or 0),
                                        confidence=confidence)
    if bound is None or claimed is None:
        return _check("rate", "not_checked",
                      "the number of examples the batches are drawn from is unknown (pass "
                      "data_loader= or dataset_size= to CanaryAudit)" if _batch_sizes(
                          record, claim) is not None else "the loop's batch sizes were not seen")
    seen = (f"{bound.batches} batches{which} from {bound.dataset_size} examples: rate ≥ "
            f"{bound.lower:.4g} at {bound.confidence:.2%} (estimate {bound.estimate:.4g}); the "
            f"accountant was told {claimed:.4g}")
    if bound.lower > claimed:
        return _check("rate", "failed", seen, confidence=bound.confidence)
    return _check("rate", "passed", seen, confidence=bound.confidence)


# -- steps, normalisation ---------------------------------------------------------------------


def _steps(record: GradientCanaryRecord, claim: PrivacyClaim) -> AssumptionCheck:
    accounted = sum(steps for _, _, steps in claim.history)
    noisy = record.steps
    if noisy > accounted:
        return _check("steps", "failed",
                      f"the optimiser added noise in {noisy} steps, the accountant accounts for "
                      f"{accounted}: {noisy - accounted} noisy steps are outside the claimed ε "
                      "(an accountant that lost its state on resume, or stepped apart from the "
                      "optimiser)")
    more = "" if noisy == accounted else (
        f"; the accountant accounts {accounted - noisy} more (steps before the audit was "
        "attached, or accounted without noise: safe)")
    return _check("steps", "passed", f"{noisy} noisy steps seen, all accounted{more}")


def _updates(record: GradientCanaryRecord, facts: LoopFacts) -> AssumptionCheck:
    if facts.outside_changed:
        shown = ", ".join(facts.outside_changed[:5]) + (
            ", …" if len(facts.outside_changed) > 5 else "")
        return _check(
            "updates", "failed",
            f"the model's parameters {shown}, which the DP optimiser does not hold, changed "
            "during training: something else trained them (another optimiser, a layer "
            "unfrozen after make_private), and the accountant never heard of it. Give every "
            "trained parameter to the optimiser before make_private")
    changed, tensors = record.changed_outside, record.changed_tensors
    if changed is None or tensors is None:
        return _check("updates", "not_checked", "the weights were not watched around the "
                      "optimiser's updates (a record of an older auditml)")
    updates = len(changed) - 1
    where = ("the weights changed between noisy updates at "
             f"{int(changed[:-1].sum())} of {updates} updates" if changed[:-1].any() else
             "the weights changed after the last noisy update")
    if changed.any():
        moved = [str(index) for index in np.flatnonzero(tensors)]
        return _check(
            "updates", "failed",
            f"{where} (trainable tensors {', '.join(moved[:5])}"
            f"{', …' if len(moved) > 5 else ''} of {len(tensors)}), so something else trained "
            "them: a second optimiser, a manual update, a step without noise. The accountant "
            "analysed the noisy updates alone; a change that uses no private data (a fixed "
            "projection of the weights) would be safe, but auditml cannot tell it apart: make "
            "every update through the DP optimiser")
    return _check("updates", "passed",
                  f"the weights changed only in the {updates} noisy updates ("
                  f"{len(tensors)} trainable tensors, a few coordinates of each read before and "
                  "after every update and at the end)")


def _normalisation(record: GradientCanaryRecord) -> AssumptionCheck:
    divisors = record.divisors
    if divisors is None or not np.isfinite(divisors).any():
        return _check("normalisation", "not_checked",
                      "the gradients the optimiser applied were not seen")
    known = divisors[np.isfinite(divisors)]
    low, high = float(known.min()), float(known.max())
    sizes = record.known_batch_sizes()
    rates = record.learning_rates
    if rates is not None:
        seen = np.isfinite(rates) & (sizes > 0)
        if _follows_batch_size(1 / rates[seen], sizes[seen]):
            return _check(
                "normalisation", "failed",
                f"the learning rate falls as the batch's real size rises (from "
                f"{np.nanmax(rates):.4g} to {np.nanmin(rates):.4g}, one per batch size): the "
                "update is divided by the batch's size through the rate, which reveals how many "
                "examples the batch held (Opacus #420, #819; Wang et al. 2026)")
    if low > 0 and high / low - 1 <= _DIVISOR_TOLERANCE:
        return _check("normalisation", "passed",
                      f"every noisy sum was divided by {float(np.median(known)):.6g}, a constant "
                      f"({known.size} steps)")
    both = np.isfinite(divisors) & (sizes > 0)
    values = np.unique(np.round(np.log(np.abs(known)) / _DIVISOR_TOLERANCE))
    if _follows_batch_size(divisors[both], sizes[both]):
        return _check(
            "normalisation", "failed",
            f"the divisor follows the batch's real size ({values.size} values from {low:.4g} to "
            f"{high:.4g}, one per batch size, rising with it), not a constant: the update "
            "reveals how many examples the batch held (Opacus #420, #819; Wang et al. 2026)")
    if both.sum() >= 2 and values.size <= max(2, both.sum() // 4):
        # A few values shared by batches of many sizes: a schedule (e.g. Opacus's division by
        # the accumulated micro-batches), not a function of the data.
        return _check("normalisation", "passed",
                      f"the divisor takes {values.size} values from {low:.4g} to {high:.4g}, each "
                      "shared by batches of different sizes: a schedule of the loop (e.g. "
                      "accumulated micro-batches), not the batch's size")
    return _check("normalisation", "warning",
                  f"the noisy sums were divided by values from {low:.4g} to {high:.4g}; whether "
                  "they follow the data could not be told (batch sizes unknown or too few steps)")


def _follows_batch_size(divisors: np.ndarray, sizes: np.ndarray) -> bool:
    """True when the divisor is a rising function of the batch size over at least three sizes:
    every size has one divisor and a larger size a larger one (Wang et al.'s normalisation by the
    real batch size, or any monotone function of it)."""
    if sizes.size < 3 or np.unique(sizes).size < 3:
        return False
    order = np.argsort(sizes, kind="stable")
    size, divisor = sizes[order], divisors[order]
    same = size[1:] == size[:-1]
    step = divisor[1:] / divisor[:-1] - 1
    return bool(np.all(np.abs(step[same]) <= _DIVISOR_TOLERANCE) and np.all(step[~same] > 0))


# -- hidden state, engine -----------------------------------------------------------------------


def _clipping(facts: LoopFacts) -> AssumptionCheck:
    """Where the canaries met the clipping says whether it was seen: through a user's optimiser's
    clipping the canaries and the clipping probe test it (the mechanism check's sensitivity
    part judges what they show); after it, nothing of the clipping is seen."""
    if facts.clipping == "through":
        return _check("clipping", "passed",
                      "the canaries and the clipping probe went through the optimiser's own "
                      "per-example clipping; the mechanism check judges how far each moved the "
                      "sum")
    if facts.clipping == "auditml":
        return _check("clipping", "passed",
                      "auditml's own per-example clipping, which adds the canaries after it at "
                      "norm exactly C (its clipping is tested against planted bugs: "
                      "tests/planted_dp.py)")
    return _check("clipping", "not_checked",
                  "the canaries joined the sum after the optimiser's clipping, so the clipping "
                  "itself was not seen: pass through_clipping=True to CanaryAudit (Opacus "
                  "grad_sample_mode='hooks') to check it" if facts.clipping == "after" else
                  "where the canaries joined the clipped sum was not recorded")


def _hidden_state(facts: LoopFacts) -> AssumptionCheck:
    layers = ", ".join(facts.mixing_layers)
    probe = facts.probe
    if probe is None or not probe.ran:
        why = "the model was not seen (pass model= to CanaryAudit)" if probe is None else (
            f"the first-batch probe did not run: {probe.reason}")
        return _check("hidden_state", "not_checked",
                      why + (f"; the model has layers that mix examples in training mode: "
                             f"{layers}" if layers else ""))
    problems = []
    if probe.mixing:
        problems.append(
            f"changing one example of the first batch moved the other examples' outputs by up "
            f"to {probe.max_change:.2g} of their scale: a layer mixes the examples of a batch"
            + (f" ({layers})" if layers else ""))
    if probe.buffers_updated:
        problems.append(
            "a training forward pass updates the buffers "
            f"{', '.join(probe.buffers_updated[:6])}"
            + (" …" if len(probe.buffers_updated) > 6 else "")
            + ": statistics of the private data kept outside the clipped, noised gradients")
    statistics = [name for name in facts.buffers_changed if name.endswith(_RUNNING_STATS)]
    if statistics:
        problems.append(
            f"the running statistics {', '.join(statistics[:6])}"
            + (" …" if len(statistics) > 6 else "")
            + " changed during training, after the first-batch probe (which saw none change): "
              "a normalisation layer ran in training mode on private batches later, keeping "
              "statistics of the data outside the clipped, noised gradients and mixing the "
              "examples of each batch")
    if problems:
        return _check("hidden_state", "failed", "; ".join(problems))
    if facts.buffers_changed:
        return _check("hidden_state", "warning",
                      f"the buffers {', '.join(facts.buffers_changed[:6])} changed during "
                      "training, though not in the first-batch probe's forward pass: if they "
                      "hold anything of the data, the accountant does not cover it")
    return _check("hidden_state", "passed",
                  f"{probe.reason}: the other examples' outputs did not move (largest change "
                  f"{probe.max_change:.1g}) and no buffer changed (the model's forward pass "
                  "only: examples mixed in the inputs or the loss are not seen)")


def _noise_source(facts: LoopFacts) -> AssumptionCheck:
    if facts.secure_rng is None:
        return _check("noise_source", "not_checked", "the privacy engine was not seen")
    if facts.secure_rng:
        return _check("noise_source", "passed", "PrivacyEngine(secure_mode=True)")
    return _check("noise_source", "warning",
                  "the noise comes from PyTorch's default generator (PrivacyEngine("
                  "secure_mode=False)): fine to experiment; for a released model the "
                  "guarantee assumes secure_mode=True (floating-point and generator attacks are "
                  "outside the accountant's model)")


def _accountant(mechanism: str) -> AssumptionCheck:
    if mechanism == "gdp":
        return _check("accountant", "warning",
                      "Opacus's gdp accountant gives the central-limit approximation of the "
                      "privacy curve, not a bound: with few steps or a large rate it can state "
                      "less than the true ε; use prv or rdp")
    return _check("accountant", "passed", f"{mechanism}: a certified upper bound")


def attach_time_findings(
    facts: LoopFacts, *, accountant: str | None, accounted_rate: float | None
) -> list[str]:
    """The findings visible before the first step (the loader, the rate it draws at, the model's
    layers, the engine), one line each: what a user should learn at step 0, not after training.
    Empty when nothing is wrong yet."""
    lines = []
    loader = _loader(facts, lambda: None)
    if loader.status == "failed":
        lines.append(f"the accountant's ε will not apply: {loader.detail}; make the loader with "
                     "PrivacyEngine.make_private(..., poisson_sampling=True) and train on the "
                     "loader it returns")
    if _loader_rate_differs(facts, accounted_rate):
        lines.append(f"the accountant's ε will not apply: the loader draws at rate "
                     f"{facts.loader_rate:.4g}, the accountant was told {accounted_rate:.4g}")
    if facts.mixing_layers:
        lines.append("the accountant's ε will not apply if these layers run in training mode: "
                     f"{', '.join(facts.mixing_layers)} normalise over the batch (each example's "
                     "output depends on the others) and keep running statistics of the data; "
                     "replace them (opacus.validators.ModuleValidator.fix) or keep them in eval "
                     "mode")
    for check in (_noise_source(facts), _accountant(accountant) if accountant else None):
        if check is not None and check.status == "warning":
            lines.append(f"warning: {check.detail}")
    return lines
