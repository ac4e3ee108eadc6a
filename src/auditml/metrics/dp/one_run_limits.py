"""How far an assumption-free one-run audit can reach: a ceiling on every valid ε lower bound.

**Setting** (as in :mod:`.one_run_epsilon`). ``m`` canaries, each included independently
with probability 1/2; one run; an audit turns what it observes into ``ε̂``. The audit is
*assumption-free* at level β and δ when, for **every** (ε', δ)-DP training algorithm and every
ε', ``P[ε̂ > ε'] <= β`` (Steinke, Nasr and Jagielski 2023 and the f-DP test of Mahloujifar,
Melis and Chaudhuri 2024 with the (ε, δ) curve are; a bound that assumes the curve's family,
like Xiang et al. 2025's tail or the DP-SGD-family bounds of :mod:`.one_run_fdp_family`,
is not).

**The ideal mechanism.** Each canary's observation is drawn independently: ``N(μ, 1)`` when it
is included, ``N(0, 1)`` when not (``P = N(0, 1)``, ``Q = N(μ, 1)``; μ-GDP, whose privacy
profile is ``δ_μ(ε) = Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2)``, the same in both directions). Its
true ε at δ is ``ε_μ(δ)``, the root of ``δ_μ(ε) = δ``.

**Theorem (ours).** For every assumption-free audit at level β and δ, every ε₁ >= 0 and every
``m``, on the ideal mechanism

    P[ε̂ > ε₁] <= β + m · (δ_μ(ε₁) - δ)₊.

Hence the median of ``ε̂`` is at most the *ceiling*

    ε_ceil = ε_μ(δ + (1/2 - β) / m)       (0 when even δ_μ(0) <= δ + (1/2 - β) / m).

*Proof.* Fix ε₁ with ``δ₁ = δ_μ(ε₁) > δ`` (otherwise the ideal mechanism is itself
(ε₁, δ)-DP and validity gives the claim). Build a second channel (P', Q') over the reals plus
one extra symbol ⊥: on ``A = {x : q(x) > e^{ε₁} p(x)}`` let
``q'(x) = e^{ε₁} p(x) + (δ / δ₁)(q(x) - e^{ε₁} p(x))``, which removes mass ``δ₁ - δ`` from Q,
and put that mass on ⊥; mirror it for P on ``{p > e^{ε₁} q}`` (disjoint from A as ε₁ >= 0),
which removes the same mass ``δ₁ - δ`` by symmetry, also put on ⊥. Everywhere else
``p' = p``, ``q' = q``. Then ``∫ (q' - e^{ε₁} p')₊ = δ``: exactly δ on A, nothing where P was
lowered (there ``p' >= e^{ε₁} q >= q``) or elsewhere, and ``(1 - e^{ε₁})(δ₁ - δ) <= 0`` on ⊥;
and the same with P and Q exchanged. So the algorithm that draws each canary's observation from
Q' when it is included and P' when not (and ignores every other example) is (ε₁, δ)-DP under
adding or removing one example, and validity says ``P'[ε̂ > ε₁] <= β``. Given the coins, the
``m`` observations of the two algorithms are products of channels at total variation ``δ₁ - δ``
each, so their joint laws are within ``m (δ₁ - δ)`` (and so are the laws of ``ε̂``, whatever
else it uses). Take ``P[ε̂ > ε₁] <= β + m (δ₁ - δ) < 1/2`` for the median. ∎

**What it says.** No assumption-free method — counts of correct guesses, the whole score vector,
abstention, adaptive guessing (Keinan, Shenfeld and Ligett 2025) or anything else — can report a
median above ``ε_ceil`` on the ideal Gaussian mechanism. With β = 0.05 and δ = 1e-5 the ratio
``ε_ceil / ε_μ(δ)`` is 0.74 (μ = 0.5), 0.77 (μ = 1), 0.805 (μ = 2) at m = 1000, and 0.89–0.92
at m = 10⁴; so "0.8 × the true ε at m = 1000" is out of reach of *any* valid assumption-free
audit for μ below about 2 (true ε below about 10 at δ = 1e-5). Only a bound that assumes the
mechanism's curve family can pass it (Xiang et al. 2025, "Tight privacy audit in one run":
their 84 % bisects over the Gaussian family's μ, and their tail treats the canaries'
observations as independent draws of that channel). The ceiling is an upper bound on what is
possible, not a bound an audit reports, and it is not claimed to be tight: the count-based
audits reach 0.26–0.48 × there (``benchmarks/one_run_ceiling.py``).
"""

from __future__ import annotations

from auditml.metrics.dp.gdp import gdp_epsilon
from auditml.metrics.dp.one_run_epsilon import _check_settings
from auditml.metrics.dp.trials_epsilon import _check_number
from auditml.metrics.roc import check_count


def gaussian_one_run_ceiling(
    mu: float, canaries: int, *, delta: float = 0.0, confidence: float = 0.95
) -> float:
    """The most any assumption-free one-run audit can report, in median, on the ideal Gaussian.

    Returns ``ε_ceil = ε_μ(δ + (1/2 - β) / m)`` with β = 1 - ``confidence`` and ``m`` =
    ``canaries``: on ``m`` canaries observed as ``N(μ·included, 1)`` independently, every audit
    whose ε lower bound is valid at level β for every (ε', δ)-DP algorithm (no assumption on the
    curve) reports more than ``ε_ceil`` with probability below 1/2 (the theorem and its proof
    are in the module docstring). Divided by the true ``ε_μ(δ)`` it is the largest fraction of
    the true ε such an audit can show in median (``benchmarks/one_run_ceiling.py`` prints it).

    Raises :class:`MetricsInputError` unless ``mu`` is a positive finite number, ``canaries`` a
    positive integer, ``delta`` in [0, 1) and ``confidence`` in (0.5, 1).
    """
    checked_mu = _check_number(mu, "mu", 0.0, 1e6, low_closed=False)
    check_count(canaries, "canaries")
    checked_delta, checked_confidence = _check_settings(delta, confidence)
    slack = (0.5 - (1 - checked_confidence)) / canaries
    if checked_delta + slack >= 1:
        return 0.0  # δ_μ(0) < 1 for every μ: no ε is needed
    return gdp_epsilon(checked_mu, checked_delta + slack)
