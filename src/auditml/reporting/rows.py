"""What a comparison report holds: one :class:`ComparisonRow` per run, in a :class:`Comparison`.

Both are plain values read from run files by :mod:`auditml.reporting.reading`; the writers in
:mod:`auditml.reporting.writers` only format them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from auditml.errors import AuditMLError
from auditml.metrics import RocCurve
from auditml.metrics.noise import tpr_above_chance
from auditml.reporting.many_runs import ManyRunsRow
from auditml.reporting.verdict import exceeds_claim

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
COMPARISON_JSON = "comparison.json"
ROC_OVERLAY_PNG = "roc_overlay.png"
ACCURACY_VS_LEAKAGE_PNG = "accuracy_vs_leakage.png"

DEFAULT_ATTACK = "mia_threshold"
# The FPR target of the TPR a comparison leads with.
ONE_PERCENT_FPR = 0.01


class ReportError(AuditMLError):
    """A report cannot be written where or how it was asked."""


@dataclass(frozen=True)
class ComparisonRow:
    """One run in the comparison; every number is copied from the run's files.

    ``epsilon`` is the ε the accountant says training spent (``None`` without DP), ``delta`` the
    run's δ as recorded in ``metrics.json``, ``auc`` and ``tpr_at_1pct_fpr`` the attack's AUC and
    its TPR at 1% FPR from ``audit/<attack>.json``.
    """

    label: str
    run_name: str
    run_dir: str
    dp_enabled: bool | None  # None: unknown (a model audited in Python, no claim given)
    epsilon: float | None
    delta: float | None
    val_acc: float | None  # None: no validation set (a model audited in Python)
    auc: float
    tpr_at_1pct_fpr: float
    # The run's strongest audit by TPR at 1% FPR (then AUC), among every attack it was audited
    # with; the compared attack itself when it is the only one.
    strongest_attack: str
    strongest_auc: float
    strongest_tpr_at_1pct_fpr: float
    # BCa bootstrap intervals on ``auc`` and ``tpr_at_1pct_fpr`` (None: audited before they
    # were recorded).
    auc_interval: tuple[float, float] | None = None
    tpr_at_1pct_fpr_interval: tuple[float, float] | None = None
    # The compared attack's statistically valid ε lower bound (None for audits made before
    # bounds were recorded); a DP run whose bound exceeds its accountant ε is a violation.
    epsilon_lower_bound: float | None = None
    # The bound's confidence (1 − alpha as recorded with it), and which tail gave it
    # (auditml.metrics.dp.trials_epsilon.BoundTail; None: a bound of 0, or not known).
    bound_confidence: float | None = None
    bound_tail: str | None = None
    # How the bound chose its threshold, in words (verdict.threshold_words; None: not recorded).
    bound_threshold: str | None = None
    # How many members and non-members the compared attack and the strongest one audited (None
    # in rows made without them): what says whether a TPR is beyond noise.
    members: int | None = None
    nonmembers: int | None = None
    strongest_members: int | None = None
    strongest_nonmembers: int | None = None
    # A language model's perplexity on its validation texts (None: a classifier, or unknown);
    # its val_acc is of next tokens.
    val_perplexity: float | None = None
    # The run's most telling canary audit (one that contradicts the claim, else the strongest
    # threat model: all iterates, last iterate, black box), when it has one.
    canary_audit: str | None = None
    canary_threat_model: str | None = None
    canary_bound: float | None = None
    canary_violation: bool | None = None
    # The accountant's assumptions that audit found broken (the claim does not apply).
    canary_failed_checks: list[str] = field(default_factory=list)
    # And those it could not check (the claim is then "not verified", never "consistent").
    canary_unchecked: list[str] = field(default_factory=list)
    # The audits beyond membership, when the run has current ones (estimates, not bounds): the
    # best attribute attack's advantage over imputation on members, its members − non-members
    # gap, and whether both are significant; the inversion's recognised share, and how many
    # reconstructions lie nearer a member (of how many, with the sign test's p).
    attribute_advantage: float | None = None
    attribute_gap: float | None = None
    attribute_leak: bool | None = None
    inversion_recognised: float | None = None
    inversion_member_closer: tuple[int, int, float] | None = None
    # The data the run was trained and audited on: a built-in dataset's name, or the format and
    # file name of the user's data ("csv (adult.csv)") with the file's SHA-256; None: unknown (a
    # model audited in Python). Leakage on different data is not comparable like for like.
    dataset: str | None = None
    dataset_sha256: str | None = None

    @property
    def strongest_beats_chance(self) -> bool | None:
        """The strongest attack's TPR at 1% FPR is beyond noise above chance (95%); None when
        the row lacks the counts."""
        if not self.strongest_members or not self.strongest_nonmembers:
            return None
        return tpr_above_chance(self.strongest_tpr_at_1pct_fpr, ONE_PERCENT_FPR,
                                self.strongest_members, self.strongest_nonmembers)

    @property
    def violation(self) -> bool:
        """The compared attack's bound exceeds the claimed ε, or a canary audit contradicts the
        claim (its ε bound or its test of the whole claimed curve)."""
        return exceeds_claim(
            dp_enabled=self.dp_enabled,
            claimed_epsilon=self.epsilon,
            epsilon_lower_bound=self.epsilon_lower_bound,
        ) or bool(self.dp_enabled and self.canary_violation)


@dataclass(frozen=True)
class Comparison:
    """The rows of a written report, in the order the runs were given, and where it lives."""

    attack: str
    run_dirs: list[Path]
    rows: list[ComparisonRow]
    out_dir: Path
    # Many-runs DP audits shown beside the runs (auditml compare --dp-audit FILE).
    dp_audits: list[ManyRunsRow] = field(default_factory=list)

    @property
    def run_labels(self) -> list[str]:
        """Each row's run as the report names it: its run name, followed where another row has
        the same name (runs of one config written to two output_dirs) by the end of its run
        directory that tells them apart ("baseline (monday/baseline)")."""
        labels = [row.run_name for row in self.rows]
        for name in {name for name, count in Counter(labels).items() if count > 1}:
            same = [index for index, row in enumerate(self.rows) if row.run_name == name]
            parts = [Path(self.rows[index].run_dir).parts for index in same]
            for depth in range(1, max(map(len, parts)) + 1):
                ends = [str(Path(*part[-depth:])) for part in parts]
                if len(set(ends)) == len(ends):
                    break
            else:
                ends = [self.rows[index].run_dir for index in same]
            for index, end in zip(same, ends, strict=True):
                labels[index] = f"{name} ({end})"
        return labels

    @property
    def dataset_note(self) -> str | None:
        """What the report says when the rows' leakage was not measured on the same data: the
        runs' datasets differ, or some are not known (models audited in Python); None when they
        share one (or there is one row)."""
        if len(self.rows) < 2:
            return None
        groups: dict[tuple[str, str | None], list[str]] = {}
        unknown: list[str] = []
        for row, label in zip(self.rows, self.run_labels, strict=True):
            if row.dataset is None:
                unknown.append(label)
            else:
                groups.setdefault((row.dataset, row.dataset_sha256), []).append(label)
        names = Counter(dataset for dataset, _ in groups)
        shown = {key: key[0] if names[key[0]] == 1 or key[1] is None
                 else f"{key[0]}, SHA-256 {key[1][:8]}…" for key in groups}
        if len(groups) > 1:
            parts = [f"{shown[key]}: {', '.join(labels)}" for key, labels in groups.items()]
            if unknown:
                parts.append(f"not known (audited in Python): {', '.join(unknown)}")
            return (f"The runs were trained and audited on different datasets "
                    f"({'; '.join(parts)}): their leakage numbers are not comparable like for "
                    "like.")
        if not unknown:
            return None
        one = len(unknown) == 1
        if groups:
            return (f"The dataset of {', '.join(unknown)} is not known (audited in Python): "
                    f"compare {'its' if one else 'their'} leakage with the other runs' (on "
                    f"{next(iter(shown.values()))}) only if {'it was' if one else 'they were'} "
                    "audited on the same data.")
        return (f"The datasets of {', '.join(unknown)} are not known (audited in Python): "
                "compare their leakage only if they were audited on the same data.")

    @property
    def report_md(self) -> Path:
        return self.out_dir / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.out_dir / REPORT_HTML

    @property
    def comparison_json(self) -> Path:
        return self.out_dir / COMPARISON_JSON

    @property
    def roc_overlay_png(self) -> Path:
        return self.out_dir / ROC_OVERLAY_PNG

    @property
    def accuracy_vs_leakage_png(self) -> Path:
        return self.out_dir / ACCURACY_VS_LEAKAGE_PNG

    def to_json(self) -> dict[str, Any]:
        """The content of ``comparison.json``."""
        return {
            "attack": self.attack,
            "run_dirs": [str(path) for path in self.run_dirs],
            "rows": [{**asdict(row), "violation": row.violation} for row in self.rows],
            "dp_audits": [asdict(row) for row in self.dp_audits],
        }


@dataclass(frozen=True)
class ComparisonData:
    """What the writers get: the comparison and each row's ROC curve (same order)."""

    comparison: Comparison
    curves: list[RocCurve]
