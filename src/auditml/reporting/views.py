"""What the report of one audited run holds, as plain values read by
:mod:`auditml.reporting.reading` from the run's files."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auditml.metrics.noise import tpr_above_chance
from auditml.metrics.singled_out import SingledOut
from auditml.records import (
    AssumptionCheck,
    DataFileRecord,
    ExposedExample,
    GaussianBoundRecord,
    InferenceRecord,
    MechanismCheckRecord,
    SecretCanaryRecord,
)
from auditml.reporting.rows import ONE_PERCENT_FPR


@dataclass(frozen=True)
class TrainingView:
    """How the run was trained, from ``metrics.json`` (or a saved Python-API audit's
    ``model.json``): what the report says of the model, beside the audits' views. Not
    :class:`auditml.records.RunFacts`, the few facts each audit record copies."""

    run_name: str
    run_dir: str
    label: str
    dataset: str | None
    arch: str | None
    # None: unknown (a model audited in Python without a stated DP claim).
    dp_enabled: bool | None
    epsilon: float | None
    delta: float | None
    val_acc: float | None  # None: no validation set (a model audited in Python)
    train_acc: float | None
    # A Python-API audit saved with .save(): auditml did not see the training.
    audited_in_python: bool = False
    # The claimed ε is the caller's word (auditml.audit, audit_language_model), not an
    # accountant's: CanaryAudit's comes from the loop's own Opacus accountant.
    epsilon_from_caller: bool = False
    # A language model's perplexity on the validation texts (its accuracies are of next tokens);
    # None for a classifier.
    val_perplexity: float | None = None
    # How many examples the model trained on (None: unknown); more than the audited members
    # when the run set data.audit_size.
    train_size: int | None = None
    # The user's data file the run was trained on (csv, npz or text data), its path and
    # SHA-256; None for a built-in dataset or a model audited in Python.
    data_file: DataFileRecord | None = None


@dataclass(frozen=True)
class AttackView:
    """One attack's audit (``audit/<attack>.json`` and its scores)."""

    name: str
    settings: dict[str, object]
    members: int
    nonmembers: int
    auc: float
    tpr_at_fpr: dict[float, float]
    advantage: float
    # ε lower bound and its confidence (1 − alpha, as recorded beside it).
    epsilon_lower_bound: float
    bound_confidence: float | None
    gdp_epsilon_estimate: float
    fpr: np.ndarray
    tpr: np.ndarray
    most_exposed: list[ExposedExample] = field(default_factory=list)
    # audit/<attack>_exposed.png, when the audit drew one (image data only).
    exposed_png: bytes | None = None
    # Which tail gave the ε lower bound (auditml.metrics.dp.trials_epsilon.BoundTail; None: bound
    # 0 or not known).
    bound_tail: str | None = None
    # BCa bootstrap intervals (auditml.metrics.MembershipIntervals) and the GDP ε lower bound;
    # None / empty for audits recorded before they existed.
    auc_interval: tuple[float, float] | None = None
    tpr_intervals: dict[float, tuple[float, float]] = field(default_factory=dict)
    gdp_lower_bound: float | None = None
    # How the ε lower bound's threshold was chosen, in words (verdict.threshold_words).
    threshold: str | None = None
    # The GDP estimate's interval implied by the AUC's (None for audits recorded before it).
    gdp_interval: tuple[float, float] | None = None
    # The members found at 0.1% FPR with exact intervals (auditml.metrics.SingledOut), and the
    # examples tied at the top score with the non-members among them (None: recorded before).
    singled_out: SingledOut | None = None
    tied_at_top: int | None = None
    tied_at_top_nonmembers: int | None = None

    @property
    def beats_chance(self) -> bool:
        """Its TPR at 1% FPR is beyond noise above an attack at chance (95%)."""
        return tpr_above_chance(self.tpr_at_fpr.get(ONE_PERCENT_FPR, 0.0), ONE_PERCENT_FPR,
                                max(self.members, 1), max(self.nonmembers, 1))


@dataclass(frozen=True)
class CanaryView:
    """A one-run canary audit (``audit/canaries/<name>.json``)."""

    name: str
    canaries: int
    included: int
    delta: float
    confidence: float
    epsilon_lower_bound: float
    best_score: str
    max_epsilon: float
    threat_model: str = "black_box"
    # The canary audit's own verdict on the DP claim (the f-DP test of the claimed curve and the
    # ε bound, jointly at its confidence); None without a claim.
    violation: bool | None = None
    claim_p_value: float | None = None
    # The all-iterates mechanism check (auditml.audit.canaries.white_box.check_mechanism).
    mechanism_check: MechanismCheckRecord | None = None
    # Each assumption of the accountant, checked (None in records older than the checks).
    assumptions: list[AssumptionCheck] | None = None
    # The curve test's own verdict (None without one).
    claim_rejected: bool | None = None
    # The ε lower bound under the Gaussian assumption (beside the verdict, never in it).
    gaussian_bound: GaussianBoundRecord | None = None
    # A language model's secret canaries: exposure and extraction (None for other canaries).
    secrets: SecretCanaryRecord | None = None

    @property
    def judged(self) -> bool:
        """Whether the bound may be compared with the run's claim: not for secrets trained on
        more than once (DP-SGD protects each as a group of rows, not as one)."""
        return self.secrets is None or self.secrets.repeats == 1

    @property
    def failed_checks(self) -> list[AssumptionCheck]:
        """The assumptions of the accountant the training broke."""
        return [check for check in self.assumptions or [] if check.status == "failed"]

    @property
    def unchecked(self) -> list[str]:
        """The assumptions of the accountant the audit could not check (by name)."""
        return [check.check for check in self.assumptions or [] if check.status == "not_checked"]

    @property
    def curve_rejected(self) -> bool:
        """The audit's observations contradict the claimed privacy (the curve test or the
        mechanism check), as distinct from a broken assumption."""
        return bool(self.violation) and (
            bool(self.claim_rejected)
            or (self.mechanism_check is not None and self.mechanism_check.violation))


@dataclass(frozen=True)
class SkippedAudit:
    """An audit the report leaves out, and why (stale, unreadable, scores not matching)."""

    name: str
    reason: str


@dataclass(frozen=True)
class InferenceView:
    """An audit beyond membership: its record, and its figure (PNG bytes) when it has one."""

    name: str
    record: InferenceRecord
    figure_png: bytes | None = None


@dataclass(frozen=True)
class RunView:
    """Everything the one-run report shows; ``attacks`` are in file-name order."""

    facts: TrainingView
    attacks: list[AttackView]
    canaries: list[CanaryView]
    skipped: list[SkippedAudit]
    inference: list[InferenceView] = field(default_factory=list)

    @property
    def strongest(self) -> AttackView | None:
        """The attack with the highest TPR at 1% FPR (ties: higher AUC); whether that is beyond
        noise is :attr:`AttackView.beats_chance`."""
        return _strongest(self.attacks)

    @property
    def exposing(self) -> AttackView | None:
        """The strongest attack whose TPR at 1% FPR is beyond chance: the only kind whose
        highest-scoring members are shown as exposed (None when no attack beats chance)."""
        return _strongest([attack for attack in self.attacks if attack.beats_chance])


def _strongest(attacks: list[AttackView]) -> AttackView | None:
    return max(
        attacks,
        key=lambda attack: (attack.tpr_at_fpr.get(ONE_PERCENT_FPR, 0.0), attack.auc),
        default=None,
    )
