"""The DP statistics: what an audit can say about a differential-privacy claim, and how surely.

Every function here is pure numpy/scipy (no torch), takes scores or counts, and returns one
frozen result object with ``to_dict``. They are re-exported by :mod:`auditml.metrics`; the
README's "Which function to quote for which claim" says which to quote for which claim.

Modules are named by the grid they fill: *how the trials were run* × *what claim is tested*.

=====================  ===============================  ======================================
trials                 an (ε, δ) claim                  a whole privacy curve (f-DP)
=====================  ===============================  ======================================
independent trials     :mod:`.trials_epsilon`           :mod:`.trials_claim_test`
(many runs, or one     ``epsilon_lower_bound``          ``tradeoff_claim_test``
model's examples)      (Clopper–Pearson at a threshold
                       chosen by a :mod:`.thresholds`
                       strategy)
one run, m canaries    :mod:`.one_run_epsilon`          :mod:`.one_run_fdp` (assumption-free),
(coins include each)   ``one_run_audit`` (Steinke,      :mod:`.one_run_fdp_family` (within the
                       Nasr, Jagielski 2023);           DP-SGD family), :mod:`.one_run_gaussian`
                       :mod:`.one_run_limits` (how far  (under the Gaussian assumption)
                       any such bound can reach)
=====================  ===============================  ======================================

Beside the grid:

- :mod:`.accounting` — what the accountant claims: the only module that computes a claimed ε
  (and the only one touching Opacus's accountants);
- :mod:`.gdp` — Gaussian DP: μ from scores (a bound and an estimate), and ε of a μ;
- :mod:`.tradeoff` — the claimed trade-off curves the f-DP tests compare against;
- :mod:`.mechanism_check` — DP-SGD's noise, sampling rate and sensitivity, measured from
  gradient canaries (all-iterates threat model);
- :mod:`.sampling` — tests of the batch sizes a loop drew (Poisson sampling as accounted);
- :mod:`.violation` — the verdict rule: when a bound contradicts a claim.
"""
