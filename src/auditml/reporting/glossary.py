"""What every number in a report means: one definition per term, shown on hover and in the
glossary of the HTML page, and under the table of ``report.md``.

Keeping the words in one place keeps the table headers, the summary and the glossary in step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """A number's name as reports show it, and what it is."""

    name: str
    definition: str


MODEL = Term(
    "Model",
    "how the model was trained: “No DP” for plain training, “ε=…” for DP-SGD calibrated to that "
    "target ε, “σ=…” for DP-SGD with that noise multiplier set directly, “ε=… claimed in "
    "Python” for a model audited with auditml.audit() whose caller stated that claim (auditml "
    "did not see its training).",
)
RUN = Term("Run", "the run's experiment name; where two compared runs share one, followed by "
           "as much of its run directory as tells them apart.")
DATASET = Term(
    "Data (audited)",
    "the data the run was trained and audited on: a built-in dataset, or the format and file "
    "name of your own data; unknown for a model audited in Python. Leakage measured on "
    "different data is not comparable like for like. Then how many members / non-members the "
    "compared attack scored: the fewer, the noisier its TPR at 1% FPR (see its interval).",
)
EPSILON_CLAIMED = Term(
    "ε (accountant)",
    "the privacy budget training actually spent, from the privacy accountant; smaller is a "
    "stronger guarantee. ∞ means no differential-privacy guarantee (trained without DP). For a "
    "model audited in Python, the ε its caller claimed (“claimed in Python” in the Model "
    "column): auditml did not see that training or its accountant.",
)
DELTA = Term(
    "δ",
    "the probability with which the ε guarantee may fail; it should be well below "
    "1/(training-set size). — for runs without DP.",
)
EPSILON_LOWER_BOUND = Term(
    "ε lower bound (audit)",
    "a lower bound on ε that holds with 95% confidence, from the attack's scores "
    "(Clopper-Pearson intervals at a threshold; how it is chosen is recorded beside the bound: "
    "by default the 95% is shared among the corners of the ROC curve's convex hull, where the "
    "best threshold lies, else chosen on one half of the examples and measured on the other). "
    "If it exceeds the accountant's ε, the training or the "
    "accounting is broken: the row is flagged VIOLATION. It comes from one of two tails: the "
    "member tail (high scores flag members) or the non-member tail (low scores flag "
    "non-members, the reverse test); both are valid, and the non-member tail can give a bound "
    "while the ROC curve lies on the diagonal.",
)
VAL_ACC = Term(
    "Val Acc", "accuracy on the held-out validation set: the utility the model keeps (for a "
    "language model, of its next-token predictions)."
)
VAL_PERPLEXITY = Term(
    "Perplexity", "a language model's exp of the mean next-token cross-entropy on the held-out "
    "validation texts: lower is better."
)
AUC = Term(
    "MIA AUC",
    "area under the membership-inference attack's ROC curve, members vs. non-members: 0.5 is "
    "guessing, 1.0 is a perfect attack. Higher means more leakage.",
)
TPR_AT_1PCT_FPR = Term(
    "TPR@1%FPR",
    "the share of training members (in %) the attack identifies while wrongly flagging only 1% "
    "of non-members; confident identification of a few members is the leakage that matters even "
    "when the AUC is near 0.5 (Carlini et al., 2022, “Membership Inference Attacks From First "
    "Principles”).",
)
STRONGEST_ATTACK = Term(
    "Strongest attack",
    "of all attacks the run was audited with, the one with the highest TPR at 1% FPR (ties: "
    "higher AUC); a model can pass the loss threshold and still leak to LiRA or RMIA. “within "
    "noise” when even its TPR is not beyond what an attack at chance shows (95%, "
    "Clopper-Pearson on the audited members and non-members).",
)
STRONGEST_AUC = Term("Its AUC", "the strongest attack's AUC.")
STRONGEST_TPR = Term("Its TPR@1%FPR", "the strongest attack's TPR at 1% FPR.")
TPR_AT_FPR = Term(
    "TPR@FPR",
    "the share of training members (in %) an attack identifies while wrongly flagging at most "
    "the stated share of non-members (the false positive rate).",
)
ADVANTAGE = Term(
    "Advantage",
    "the membership advantage max(TPR − FPR) over all thresholds, in %: 0% is guessing, 100% is "
    "a perfect attack.",
)
GDP_ESTIMATE = Term(
    "GDP ε estimate",
    "an estimate, not a bound: the ε implied by a Gaussian privacy curve with the attack's AUC "
    "(μ-GDP, Dong, Roth and Su 2019; AUC = Φ(μ/√2)). It can exceed the true ε; only the ε "
    "lower bound is a statistically valid statement. The GDP lower bound beside it (“≥ … if "
    "Gaussian”) holds with 95% confidence if the privacy curve is Gaussian.",
)
CANARY_AUDIT = Term(
    "Canary audit",
    "the run's most telling canary audit: one that contradicts the claim if any, else the "
    "strongest threat model it was audited under (all iterates: every noisy DP-SGD update; last "
    "iterate: the final weights; black box: the model's outputs), with its ε lower bound. "
    "VIOLATION when its bound exceeds the claimed ε or it rejects the accountant's whole claimed "
    "privacy curve.",
)
ATTRIBUTE_INFERENCE = Term(
    "Attribute inference",
    "the attribute-inference audit's estimate (not a bound), for the model-querying attack with "
    "the largest advantage: how much more often it infers the members' sensitive attribute than "
    "the imputation baseline that never queries the model (over imputation), and than the "
    "non-members' (members − non-members). LEAK when some attack beats imputation on members and "
    "some attack does better on members than on non-members, each at 95% confidence.",
)
BOUND_THRESHOLD = Term(
    "ε bound's threshold",
    "how the compared attack's ε lower bound chose the threshold it counts errors at, as recorded "
    "beside the bound: the level shared among the corners of the ROC curve's convex hull (the "
    "default), among all candidate thresholds, chosen on one half of the examples and measured "
    "on the other, a median over random splits, or a threshold fixed in advance.",
)
MODEL_INVERSION = Term(
    "Model inversion",
    "the model-inversion audit's estimate (not a bound): the share of per-class reconstructions "
    "an independent classifier recognises, and in how many the nearest training member is nearer "
    "than the nearest non-member of the class (sign-test p; a small p means the reconstructions "
    "depend on which examples were trained on, not only on the class — information about the "
    "training sample, not necessarily a copy of one member).",
)
CANARY_BOUND = Term(
    "one-run ε lower bound",
    "the one-run audit of Steinke, Nasr and Jagielski (2023): training added each canary with "
    "probability 1/2; the audit guesses which were added from the trained model alone, and turns "
    "the number of correct guesses into an ε lower bound that holds with the stated confidence.",
)
MAX_EPSILON = Term(
    "largest provable ε",
    "the largest ε lower bound these canaries could show even if every guess were right; a bound "
    "near it means more canaries could show more.",
)
VIOLATION = Term(
    "VIOLATION",
    "an audit's ε lower bound exceeds the ε the accountant claims for a DP run: the DP training "
    "or its accounting is broken (or, with probability at most 5% per bound, the bound failed); "
    "do not trust the claimed guarantee.",
)

# The table of many-runs DP audits (auditml.reporting.many_runs), in column order.
MANY_RUNS = (
    Term("Recipe", "the audited config's experiment name; the result file it was read from."),
    Term("Runs", "trainings of the recipe, each with one gradient canary included by a fair "
         "coin; in parentheses, how many had it. A one-run canary audit shows its canaries "
         "instead, and how many were included."),
    Term("Claimed ε", "the ε the recipe's accountant claims for each run, at δ."),
    Term("ε lower bound (many runs)", "an ε the runs prove the recipe leaks at least, at δ "
         "(Clopper-Pearson at a threshold chosen on half the runs; holds with the stated "
         "confidence), and its tail: member tail when a high canary score flags the runs that "
         "had the canary, non-member tail when a low one flags the runs without it. Threat "
         "model: all iterates (each run's noisy updates). For a one-run canary audit, the "
         "one-run bound of its canaries (Steinke et al. 2023)."),
    Term("Claimed curve", "the test of the whole privacy curve the accountant claims against "
         "the runs' (score, coin) pairs: REJECTED when the runs contradict it."),
    Term("Verdict", "VIOLATION when the claimed-curve test rejects the claim (wrong with "
         "probability at most 1 − its confidence when the claim holds) or, for a one-run canary "
         "audit, when its mechanism check contradicts the claim or the loop broke one of the "
         "accountant's assumptions; else consistent, or \"not verified\" when some of those "
         "assumptions could not be checked (named)."),
)
