"""The typed records of a run directory: what ``train`` and ``audit`` write, what readers trust.

Each JSON file of a run directory is one of these records; :class:`~auditml.run_directory.
RunDirectory` is the only code that reads or writes them, and it validates every file against
its record on the way in, so a hand-edited, truncated or foreign file becomes one clear error
instead of a wrong number in a report.

============================== =================== ==========================================
file                           record              written by
============================== =================== ==========================================
``manifest.json``              :class:`RunManifest` ``train``: SHA-256 of every file it wrote
``metrics.json``               :class:`TrainingRecord` ``train``
``model.json``                 :class:`AuditedModelRecord` a save of a Python-API audit, instead
                                                   of ``metrics.json`` (and ``config.yaml``...)
``audit/<attack>.json``        :class:`AttackRecord` ``audit``, one per membership attack
``audit/canaries/<name>.json`` :class:`CanaryRecord` ``audit``, one per canary audit
============================== =================== ==========================================

Every record carries ``schema_version``. A file without it, or with another version, was written
by another version of auditml; the reader says which command regenerates it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    StrictBool,
    field_validator,
    model_serializer,
    model_validator,
)

from auditml.metrics import (
    MembershipIntervals,
    MembershipMetrics,
    MetricsInputError,
    SingledOut,
)

# Bump when a record changes incompatibly; readers refuse other versions with a clear message.
SCHEMA_VERSION = 1


class Record(BaseModel):
    """Base of every record: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Written(_Part):
    """A part that mirrors a ``to_dict`` of :mod:`auditml.metrics`: keys that records of older
    versions lack are optional, and a part is written back with the keys it was given, no more
    (a record read and written again is the same JSON)."""

    @model_serializer(mode="wrap")
    def _as_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if key in self.model_fields_set}


# -- training -------------------------------------------------------------------------------------


class EpochRecord(_Part):
    epoch: int = Field(ge=1)
    loss: float
    train_acc: float
    val_acc: float | None
    epsilon: float | None
    # A language model's perplexity on the validation texts after the epoch; None for a
    # classifier (and in records written before it was kept).
    val_perplexity: float | None = Field(default=None, ge=1)


class CanaryCounts(_Part):
    count: int = Field(ge=0)
    included: int = Field(ge=0)
    kind: str


class GradientCanaryCounts(_Part):
    """The run's gradient canaries (white-box audits; ``gradient_canaries.npz`` holds the rest)."""

    count: int = Field(ge=1)
    included: int = Field(ge=0)
    direction: Literal["dirac", "random_direction"]


class Versions(_Part):
    python: str
    torch: str
    opacus: str
    auditml: str
    numpy: str

    @classmethod
    def current(cls) -> Versions:
        """The versions running now."""
        import platform
        from importlib.metadata import version

        import numpy as np
        import torch

        from auditml.version import __version__

        return cls(python=platform.python_version(), torch=torch.__version__,
                   opacus=version("opacus"), auditml=__version__, numpy=np.__version__)


class RecipeRecord(Record):
    """The DP recipe a run trained with (``training.dp.recipe`` written out, see
    :mod:`auditml.training.recipe`), with the architecture and learning rate it gave."""

    name: Literal["default", "plain"]
    architecture: bool
    min_learning_rate: float = Field(ge=0)
    ema_decay: float = Field(ge=0, lt=1)
    # Runs written before the schedule existed trained at a constant rate.
    lr_schedule: Literal["constant", "cosine"] = "constant"
    augmentation_multiplicity: int = Field(default=1, ge=1)
    # Runs written before the per-architecture schedule existed trained as configured.
    schedule: bool = False
    arch: str
    learning_rate: float = Field(gt=0)
    # The settings the schedule changed: name -> {"configured": ..., "used": ...}.
    schedule_changes: dict[str, dict[str, Any]] = Field(default_factory=dict)


class DataFileRecord(_Part):
    """The user's file a run's dataset was read from (``data.dataset: csv`` or ``npz``): its
    absolute path and SHA-256, so ``audit`` notices a file changed since ``train``."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ModelSource(_Part):
    """Where a model of the user's own (``model.arch: module.path:factory``) was loaded from:
    the module's source file and its SHA-256, so a run can be traced to the code it trained."""

    module: str
    factory: str
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class TrainingRecord(Record):
    """``metrics.json``: how the model was trained and what it achieved.

    ``epsilon`` is the ε the accountant says training spent at ``delta`` (None without DP);
    ``grad_sample_mode`` says how per-example gradients were clipped (fast, hooks or ghost).
    ``val_acc`` is the last epoch's validation accuracy; ``train_acc`` and ``nonmember_acc`` are
    measured on the members and the non-members after training.
    """

    experiment_name: str
    dataset: str
    arch: str
    train_size: int = Field(gt=0)
    seed: int
    device: str
    val_acc: float = Field(ge=0, le=1)
    train_acc: float = Field(ge=0, le=1)
    nonmember_acc: float = Field(ge=0, le=1)
    canaries: CanaryCounts
    losses: list[float]
    history: list[EpochRecord]
    dp_enabled: bool
    epsilon: float | None
    target_epsilon: float | None
    delta: float | None
    noise_multiplier: float | None
    noise_calibrated: bool | None
    max_grad_norm: float | None
    sample_rate: float | None
    steps: int | None
    accountant: str | None
    grad_sample_mode: str | None
    # The DP recipe's parts as trained (training.dp.recipe written out, plus the architecture
    # and learning rate they gave); None without DP-SGD.
    recipe: RecipeRecord | None = None
    wall_time_s: float = Field(ge=0)
    versions: Versions
    # None when the run has no gradient canaries; ``canaries`` counts the input-space ones.
    gradient_canaries: GradientCanaryCounts | None = None
    # The user's data file (csv or npz datasets); None for the built-in datasets.
    data_file: DataFileRecord | None = None
    # Only for ``model.arch: module.path:factory``; None for a registered architecture.
    model_source: ModelSource | None = None
    # What the model was trained to do; a language model's accuracies are those of its next-token
    # predictions, and its perplexities (exp of the mean token cross-entropy) are given too.
    task: Literal["classification", "causal_lm"] = "classification"
    val_perplexity: float | None = Field(default=None, ge=1)
    train_perplexity: float | None = Field(default=None, ge=1)
    nonmember_perplexity: float | None = Field(default=None, ge=1)
    # The training id of model.base's run when this run was fine-tuned from it, else None.
    base_training_id: str | None = None

    @field_validator("epsilon", "target_epsilon", "delta", "noise_multiplier", "max_grad_norm",
                     "sample_rate")
    @classmethod
    def _privacy_setting(cls, value: float | None, info: Any) -> float | None:
        """The privacy numbers a report shows and judges: each in the range it has when auditml
        wrote it (a hand-edited NaN or negative ε was shown, and judged a VIOLATION)."""
        if value is None:
            return None
        low, high, low_in, high_in = _PRIVACY_RANGES[info.field_name]
        if not math.isfinite(value) or value < low or value > high or (
                value == low and not low_in) or (value == high and not high_in):
            raise ValueError(f"must be a number in {'[' if low_in else '('}{low:g}, {high:g}"
                             f"{']' if high_in else ')'}, got {value!r}")
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError(f"must be 0 or more, got {value}")
        return value


# Each privacy number of a TrainingRecord: its lowest and highest values, and whether each is
# allowed (an infinite upper end: any finite number).
_PRIVACY_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "epsilon": (0.0, math.inf, True, False),
    "target_epsilon": (0.0, math.inf, False, False),
    "delta": (0.0, 1.0, False, False),
    "noise_multiplier": (0.0, math.inf, False, False),
    "max_grad_norm": (0.0, math.inf, False, False),
    "sample_rate": (0.0, 1.0, False, True),
}


class RunManifest(Record):
    """``manifest.json``: the fingerprint of what ``train`` wrote, checked by every reader.

    ``files`` maps each file name to its SHA-256. ``training_id`` (a hash of ``files``) names
    this training: every audit result records it, so a result made before a retrain is known
    to be stale.
    """

    auditml: str
    files: dict[str, str]
    training_id: str
    # "train": ``auditml train`` wrote the run; "api": a Python-API audit was saved there
    # (``AuditResults.save``, ``CanaryAuditResult.save``): its model is described by an
    # :class:`AuditedModelRecord`, and it has no config, weights or split to audit again.
    source: Literal["train", "api"] = "train"


class AuditedModelRecord(Record):
    """``model.json``: a model audited in Python (``auditml.api.audit``,
    ``auditml.audit_language_model``, or ``CanaryAudit`` on the caller's own training loop),
    whose training auditml did not see (a language model's accuracies are of its next tokens).

    Only what the audit was given or measured is recorded; ``None`` is *unknown*, never a
    default: ``dp_enabled`` is None unless the caller stated a DP claim (``claimed_epsilon``);
    ``train_acc`` and ``nonmember_acc`` are the model's accuracy on the given members and
    non-members, measured when it was audited (None where the audit did not measure them).
    """

    source: Literal["api.audit", "api.audit_language_model", "CanaryAudit"]
    experiment_name: str
    arch: str | None = None  # the model's class name, when a model was given
    members: int | None = Field(default=None, ge=0)
    nonmembers: int | None = Field(default=None, ge=0)
    train_acc: float | None = Field(default=None, ge=0, le=1)
    nonmember_acc: float | None = Field(default=None, ge=0, le=1)
    dp_enabled: bool | None = None
    epsilon: float | None = Field(default=None, ge=0)
    delta: float | None = Field(default=None, ge=0, lt=1)
    versions: Versions


# -- audits ---------------------------------------------------------------------------------------


class RunFacts(_Part):
    """What an audit result says about the model it audited (copied from ``metrics.json``)."""

    experiment_name: str
    dp_enabled: bool | None
    epsilon: float | None = None
    delta: float | None = None
    val_acc: float | None = None
    # The manifest's training_id; None for models audited outside a run directory.
    training_id: str | None = None


class Counts(_Part):
    members: int = Field(ge=0)
    nonmembers: int = Field(ge=0)


class ExposedExample(_Part):
    example: int
    label: int
    score: float


class HiddenStateProbe(_Part):
    """The first training batch, run twice with one example changed (:mod:`auditml.training.
    loop_inspection`): whether the other examples' outputs moved (``mixing``; ``max_change`` is
    the largest change relative to the outputs' scale) and which buffers the training-mode
    forward pass changed. ``ran`` False: ``reason`` says why not."""

    ran: bool
    reason: str
    batch: int = Field(default=0, ge=0)
    mixing: bool | None = None
    max_change: float | None = None
    buffers_updated: list[str] = Field(default_factory=list)


class LoopFacts(_Part):
    """What auditml saw of a DP-SGD loop besides its noisy sums: the loader, the engine and the
    model, inspected when the audit was attached, and the first-batch probe. ``None`` (or an
    empty list) is "not seen"; checks that need a fact that was not seen say so."""

    loader: str | None = None  # the batches' sampler, in words
    # How the loader draws its batches: Poisson sampling, or fixed-size batches shuffled each
    # epoch, in a fixed order, by weights, or by another sampler.
    sampling: Literal["poisson", "shuffled", "in_order", "weighted", "other"] | None = None
    loader_rate: float | None = None  # the rate a Poisson loader draws at
    dataset_size: int | None = Field(default=None, ge=1)  # examples the loader draws from
    steps_per_epoch: int | None = Field(default=None, ge=1)  # len(loader)
    secure_rng: bool | None = None  # the engine's noise comes from a secure generator
    mixing_layers: list[str] = Field(default_factory=list)  # "path: Type" of example-mixing layers
    running_stats: list[str] = Field(default_factory=list)  # layers that track running statistics
    probe: HiddenStateProbe | None = None
    buffers_changed: list[str] = Field(default_factory=list)  # changed between attach and end
    # Where the canaries join the clipped sum: after auditml's own per-example clipping
    # ("auditml"), after a user's optimiser's clipping, which is then not seen ("after"), or
    # through that clipping with the clipping probe ("through"); None in older records.
    clipping: Literal["auditml", "after", "through"] | None = None
    # The model's parameters outside the DP optimiser that changed between attach and end (a few
    # coordinates of each read): trained by something the accountant never heard of.
    outside_changed: list[str] = Field(default_factory=list)


class AssumptionCheck(_Part):
    """One assumption of the accountant, checked against what the loop did.

    ``status``: ``passed``; ``failed`` (the claim fails: ``finding`` ``violation`` when the
    observations contradict the claimed privacy, ``not_applicable`` when the mechanism that ran
    is not the one the accountant analysed); ``warning`` (noted, the claim stands); or
    ``not_checked`` (``detail`` says what was missing). ``p_value`` and ``confidence`` belong to
    statistical checks; exact ones (what the code or the optimiser did) have neither.
    ``epsilon_lower_bound`` is, where the literature gives one, the ε of what the loop really did,
    from below (e.g. shuffled batches), at the audit's δ.
    """

    check: str
    assumption: str
    status: Literal["passed", "failed", "warning", "not_checked"]
    finding: Literal["violation", "not_applicable"] | None = None
    detail: str
    p_value: float | None = Field(default=None, ge=0, le=1)
    confidence: float | None = Field(default=None, gt=0, lt=1)
    epsilon_lower_bound: float | None = Field(default=None, ge=0)

    @field_validator("finding")
    @classmethod
    def _finding_with_failure(cls, finding: str | None, info: Any) -> str | None:
        if (finding is not None) != (info.data.get("status") == "failed"):
            raise ValueError("a finding goes with a failed check, and only with one")
        return finding


class CalibratedAccuracyRecord(_Part):
    """:class:`auditml.metrics.CalibratedAccuracy`: the threshold chosen on one half, its
    accuracy on the other."""

    threshold: float
    accuracy: float
    calibration_size: int = Field(ge=0)
    evaluation_size: int = Field(ge=0)


class MembershipMetricsRecord(_Written):
    """:meth:`auditml.metrics.MembershipMetrics.to_dict`, the same keys: ``tpr_at_fpr`` keyed by
    the ``repr`` of each FPR (``"0.001"``); ``tied_at_top`` and ``tied_at_top_nonmembers``
    count the examples sharing the highest score, and the non-members among them."""

    auc: float
    tpr_at_fpr: dict[str, float]
    advantage: float
    calibrated_accuracy: CalibratedAccuracyRecord
    members: int = Field(ge=0)
    nonmembers: int = Field(ge=0)
    # Absent in records written before 2026-12.
    tied_at_top: int | None = Field(default=None, ge=1)
    tied_at_top_nonmembers: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _metrics_complete(self) -> MembershipMetricsRecord:
        self.membership_metrics()  # rates are rates, FPR keys are numbers
        return self

    def membership_metrics(self) -> MembershipMetrics:
        """As :class:`auditml.metrics.MembershipMetrics` (``ValueError`` when malformed)."""
        try:
            return MembershipMetrics.from_dict(self.model_dump())
        except MetricsInputError as error:
            raise ValueError(str(error)) from None


class ClassMetricsRecord(_Part):
    """One class's entry of :func:`auditml.metrics.per_class_metrics`."""

    auc: float
    tpr_at_fpr: dict[str, float]
    members: int = Field(ge=0)
    nonmembers: int = Field(ge=0)


class ComputeRecord(_Part):
    """What one attack cost: wall seconds fitting and scoring, and the reference or shadow
    models it used."""

    seconds: float = Field(ge=0)
    reference_models: int = Field(ge=0)


# -- typed values of the audit records ----------------------------------------------------------


def _finite(value: Any) -> float:
    """A JSON number that is finite (not a text, a boolean, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"must be a finite number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"must be a finite number, got {value!r}")
    return float(value)


def _integer(value: Any) -> int:
    """A JSON integer (not a text, a boolean or a fraction)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"must be an integer, got {value!r}")
    return int(value)


Finite = Annotated[float, BeforeValidator(_finite)]
Integer = Annotated[int, BeforeValidator(_integer)]
Count = Annotated[int, BeforeValidator(_integer), Field(ge=0)]
Epsilon = Annotated[float, BeforeValidator(_finite), Field(ge=0)]
Probability = Annotated[float, BeforeValidator(_finite), Field(ge=0, le=1)]
Level = Annotated[float, BeforeValidator(_finite), Field(gt=0, lt=1)]  # a confidence, an alpha
Delta = Annotated[float, BeforeValidator(_finite), Field(ge=0, lt=1)]


class ThresholdStrategyRecord(_Written):
    """:meth:`auditml.metrics.dp.thresholds.ThresholdStrategy.to_dict`: the name and its
    settings."""

    name: str
    fraction: Annotated[float, BeforeValidator(_finite), Field(gt=0, lt=1)] | None = None
    seed: Integer | None = None
    splits: Annotated[int, BeforeValidator(_integer), Field(ge=1)] | None = None
    threshold: Finite | None = None


class EpsilonBoundRecord(_Written):
    """:meth:`auditml.metrics.EpsilonLowerBound.to_dict`. Records before 2026-12 lack
    ``threshold_strategy`` and ``candidates``, the oldest ``tail`` too."""

    epsilon: Epsilon
    alpha: Level
    delta: Delta | None = None
    method: str | None = None
    threshold_policy: str | None = None
    threshold: Finite | None = None
    false_positives: Count | None = None
    negatives: Count | None = None
    false_negatives: Count | None = None
    positives: Count | None = None
    tail: Literal["member", "nonmember"] | None = None
    threshold_strategy: ThresholdStrategyRecord | None = None
    candidates: Count | None = None

    def as_written(self) -> dict[str, Any]:
        """The mapping of :meth:`~auditml.metrics.EpsilonLowerBound.to_dict`, as recorded."""
        return self.model_dump(mode="json")


class GdpEstimateRecord(_Written):
    """:meth:`auditml.metrics.GaussianDPEstimate.to_dict`, with ``interval`` ``[low, high]``
    (the AUC's BCa interval mapped through the estimate) since it is recorded. Records before
    2026-12 measured μ at one threshold: a ``threshold`` key instead of ``auc`` and ``method``."""

    mu: Finite
    epsilon: Epsilon
    delta: Delta | None = None
    auc: Probability | None = None
    method: str | None = None
    threshold: Finite | None = None
    note: str | None = None
    interval: list[Finite] | None = None

    @model_validator(mode="after")
    def _interval_holds_the_estimate(self) -> GdpEstimateRecord:
        if self.interval is not None:
            if len(self.interval) != 2:
                raise ValueError(f"interval must be [low, high], got {self.interval!r}")
            low, high = self.interval
            if not 0 <= low <= self.epsilon <= high:
                raise ValueError(
                    f"interval must hold the estimate {self.epsilon}, got {self.interval}"
                )
        return self


class GdpLowerBoundRecord(_Written):
    """:meth:`auditml.metrics.GaussianDPLowerBound.to_dict` (absent in records before 2026-12)."""

    mu: Annotated[float, BeforeValidator(_finite), Field(ge=0)]
    epsilon: Epsilon
    delta: Delta
    alpha: Level
    threshold: Finite
    false_positives: Count
    negatives: Count
    false_negatives: Count
    positives: Count
    note: str


class IntervalsRecord(_Written):
    """:meth:`auditml.metrics.MembershipIntervals.to_dict`: BCa intervals ``[low, high]`` of the
    AUC and of the TPR at each FPR (keyed by its ``repr``); absent in records before 2026-12."""

    auc: list[Finite]
    tpr_at_fpr: dict[str, list[Finite]]
    confidence: Level
    resamples: Annotated[int, BeforeValidator(_integer), Field(ge=1)]
    seed: Integer
    method: str | None = None

    @model_validator(mode="after")
    def _intervals_complete(self) -> IntervalsRecord:
        self.membership_intervals()  # pairs, each 0 <= low <= high <= 1; FPR keys are numbers
        return self

    def membership_intervals(self) -> MembershipIntervals:
        """As :class:`auditml.metrics.MembershipIntervals` (``ValueError`` when malformed)."""
        data = self.model_dump()
        for pair in [data["auc"], *data["tpr_at_fpr"].values()]:
            if len(pair) != 2:
                raise ValueError(f"intervals must be [low, high], got {pair!r}")
        try:
            return MembershipIntervals.from_dict(data)
        except MetricsInputError as error:
            raise ValueError(str(error)) from None


class SingledOutRecord(_Written):
    """:meth:`auditml.metrics.SingledOut.to_dict`: the members an attack singles out at a low
    FPR, with Clopper–Pearson intervals (``threshold`` null when no score is admitted); absent
    in records before 2026-12."""

    fpr: Probability
    threshold: Finite | None
    members_found: Count
    nonmembers_flagged: Count
    members: Count
    nonmembers: Count
    tpr_interval: list[Finite]
    fpr_interval: list[Finite]
    confidence: Level

    @model_validator(mode="after")
    def _singled_out_complete(self) -> SingledOutRecord:
        self.singled_out()  # counts within their totals, intervals 0 <= low <= high <= 1
        return self

    def singled_out(self) -> SingledOut:
        """As :class:`auditml.metrics.SingledOut` (``ValueError`` when malformed)."""
        data = self.model_dump()
        for pair in (data["tpr_interval"], data["fpr_interval"]):
            if len(pair) != 2:
                raise ValueError(f"intervals must be [low, high], got {pair!r}")
        try:
            return SingledOut.from_dict(data)
        except MetricsInputError as error:
            raise ValueError(str(error)) from None


class OneRunBoundRecord(_Written):
    """:meth:`auditml.metrics.OneRunBound.to_dict`: one score's bound of a canary audit
    (``method`` is absent in records before 2026-12)."""

    epsilon: Epsilon
    max_epsilon: Epsilon
    correct: Count
    guesses: Count
    confidence: Level | None = None
    delta: Delta | None = None
    canaries: Count | None = None
    k_positive: Count | None = None
    k_negative: Count | None = None
    candidates: Count | None = None
    method: str | None = None


class CanaryClaimTestRecord(_Written):
    """A canary audit's f-DP test of the accountant's claimed curve
    (:func:`auditml.audit.canaries.white_box.check_claim`; also the keys of
    :meth:`auditml.metrics.dp.one_run_fdp.FDPClaimTest.to_dict`). Records of older versions hold
    only
    ``violation``, ``p_value`` and ``confidence``."""

    violation: StrictBool
    p_value: Probability
    confidence: Level
    correct: Count | None = None
    guesses: Count | None = None
    canaries: Count | None = None
    allowed_correct: Count | None = None
    k_positive: Count | None = None
    k_negative: Count | None = None
    candidates: Count | None = None
    claim: str | None = None
    epsilon_lower_bound: Epsilon | None = None
    family_epsilon_lower_bound: Epsilon | None = None
    family: str | None = None
    family_noise_scale: Finite | None = None


class NoiseCheckRecord(_Written):
    """The mechanism check's noise part: :meth:`auditml.metrics.dp.mechanism_check.NoiseBound.
    to_dict` and the noise multiplier the accountant assumed (``claimed``)."""

    claimed: Finite
    estimate: Finite
    upper: Finite
    observations: Count
    confidence: Level | None = None


class RateCheckRecord(_Written):
    """The sampling-rate part: :meth:`~auditml.metrics.dp.mechanism_check.RateBound.to_dict` and
    the accountant's rate (``claimed``)."""

    claimed: Finite
    estimate: Finite
    lower: Finite
    batches: Count
    dataset_size: Count | None = None
    confidence: Level | None = None


class SensitivityCheckRecord(_Written):
    """The sensitivity part: :meth:`~auditml.metrics.dp.mechanism_check.SensitivityBound.to_dict`
    of the test whose rows moved the sums most, which tensor's canaries (``tensor``, None: all
    pooled or the clipping ``probe``), out of how many ``tensors`` and ``tests``."""

    estimate: Finite
    lower: Finite
    sampled: Count
    tensors: Count
    tensor: Integer | None = None
    canaries: Count | None = None
    tests: Count | None = None
    probe: StrictBool = False
    p_value: Probability | None = None
    observations: Count | None = None
    confidence: Level | None = None


class MechanismCheckRecord(_Written):
    """The all-iterates mechanism check (:func:`auditml.audit.canaries.white_box.
    check_mechanism`): each part measured, the true ε of DP-SGD at those bounds from below
    (``family_epsilon_lower_bound``), and whether it exceeds the claim. Records of older
    versions have no ``sample_rate`` or ``sensitivity``."""

    violation: StrictBool
    confidence: Level
    noise: NoiseCheckRecord
    sample_rate: RateCheckRecord | None = None
    sensitivity: SensitivityCheckRecord | None = None
    family_epsilon_lower_bound: Epsilon
    family: str


class ManyRunsClaimTestRecord(_Written):
    """:meth:`auditml.metrics.dp.trials_claim_test.ClaimTest.to_dict` (``threshold_strategy`` is
    absent in
    records before 2026-12)."""

    violation: StrictBool
    confidence: Level
    threshold: Finite | None = None
    false_positive_upper: Probability | None = None
    false_negative_upper: Probability | None = None
    allowed_false_negative: Finite | None = None
    threshold_strategy: ThresholdStrategyRecord | None = None


class AttackRecord(Record):
    """``audit/<attack>.json``: one membership attack's result on one model.

    ``metrics`` is :meth:`auditml.metrics.MembershipMetrics.to_dict`; ``epsilon_lower_bound``
    (a bound, 95% confidence) and ``gdp_estimate`` (an estimate, not a bound) are the
    ``to_dict`` of :class:`auditml.metrics.EpsilonLowerBound` and
    :class:`auditml.metrics.GaussianDPEstimate` (records before 2026-12 measured μ at one
    threshold: a ``threshold`` key instead of ``auc`` and ``method``); ``gdp_lower_bound`` is the
    ``to_dict`` of :class:`auditml.metrics.GaussianDPLowerBound` and ``intervals`` (BCa
    bootstrap intervals on the AUC and TPRs) that of :class:`auditml.metrics.MembershipIntervals`
    (both absent in older records); ``singled_out`` (the members found at 0.1 % FPR, with exact
    intervals) that of :class:`auditml.metrics.SingledOut` (absent before 2026-12).
    ``scores_file`` and ``scores_sha256`` name the scores this result was computed from; a reader
    refuses a result whose scores file has another hash (an interrupted or concurrent audit).
    """

    attack: str
    settings: dict[str, JsonValue]
    fitted: dict[str, JsonValue]
    counts: Counts
    metrics: MembershipMetricsRecord
    epsilon_lower_bound: EpsilonBoundRecord
    gdp_estimate: GdpEstimateRecord
    per_class: dict[str, ClassMetricsRecord]
    gdp_lower_bound: GdpLowerBoundRecord | None = None
    intervals: IntervalsRecord | None = None
    singled_out: SingledOutRecord | None = None
    most_exposed: list[ExposedExample]
    compute: ComputeRecord
    run: RunFacts
    scores_file: str | None = None
    scores_sha256: str | None = None
    roc_plot: str | None = None
    exposed_gallery: str | None = None

    def membership_metrics(self) -> MembershipMetrics:
        """The metrics as :class:`auditml.metrics.MembershipMetrics`."""
        return self.metrics.membership_metrics()

    def membership_intervals(self) -> MembershipIntervals | None:
        """The bootstrap intervals, or None for a record written before they existed."""
        return None if self.intervals is None else self.intervals.membership_intervals()

    def members_singled_out(self) -> SingledOut | None:
        """The members singled out at a low FPR, or None for a record written before it."""
        return None if self.singled_out is None else self.singled_out.singled_out()

    @property
    def epsilon_bound(self) -> float:
        """The ε lower bound (holds with the confidence recorded beside it)."""
        return self.epsilon_lower_bound.epsilon

    @model_validator(mode="after")
    def _counts_agree(self) -> AttackRecord:
        metrics = (self.metrics.members, self.metrics.nonmembers)
        if metrics != (self.counts.members, self.counts.nonmembers):
            raise ValueError(f"metrics count {metrics[0]} members and {metrics[1]} non-members, "
                             f"counts {self.counts.members} and {self.counts.nonmembers}")
        return self

    def check_scores(self, scores: np.ndarray, is_member: np.ndarray) -> None:
        """Raise ``ValueError`` unless the record's counts, AUC, advantage, TPRs, ε lower bound
        and Gaussian-DP lower bound are those of ``scores``, recomputed (not the bootstrap
        intervals, the per-class metrics or the GDP estimate): a record edited by hand must not
        show numbers its scores do not give."""
        from auditml.metrics import epsilon_lower_bound, gdp_lower_bound, membership_metrics
        from auditml.metrics.dp.thresholds import STRATEGIES

        counts = (int(is_member.sum()), int((~is_member).sum()))
        if counts != (self.counts.members, self.counts.nonmembers):
            raise ValueError(f"the scores hold {counts[0]} members and {counts[1]} "
                             f"non-members, the record {self.counts.members} and "
                             f"{self.counts.nonmembers}")
        recorded = self.membership_metrics()
        fresh = membership_metrics(scores, is_member, fprs=tuple(recorded.tpr_at_fpr))
        pairs = {"AUC": (recorded.auc, fresh.auc),
                 "advantage": (recorded.advantage, fresh.advantage),
                 **{f"TPR at {fpr:g} FPR": (tpr, fresh.tpr_at_fpr[fpr])
                    for fpr, tpr in recorded.tpr_at_fpr.items()}}
        bound = self.epsilon_lower_bound
        strategy = bound.threshold_strategy
        kinds = {kind.name: kind for kind in STRATEGIES}
        if strategy is not None and strategy.name in kinds:
            settings = {key: value for key, value in strategy.model_dump().items()
                        if key != "name" and value is not None}
            again = epsilon_lower_bound(scores, is_member, delta=bound.delta or 0.0,
                                        confidence=1 - bound.alpha,
                                        threshold=kinds[strategy.name](**settings))
            pairs["ε lower bound"] = (bound.epsilon, again.epsilon)
        if self.gdp_lower_bound is not None:
            gdp = self.gdp_lower_bound
            again_gdp = gdp_lower_bound(scores, is_member, delta=gdp.delta,
                                        confidence=1 - gdp.alpha)
            pairs["μ-GDP lower bound"] = (gdp.mu, again_gdp.mu)
            pairs["ε lower bound if Gaussian"] = (gdp.epsilon, again_gdp.epsilon)
        for name, (written, computed) in pairs.items():
            if not math.isclose(written, computed, rel_tol=1e-9, abs_tol=1e-12):
                raise ValueError(f"its {name} is {written!r}, its scores give {computed!r}")


class GaussianBoundRecord(_Part):
    """A canary audit's ε lower bound **under the Gaussian assumption**
    (:meth:`auditml.metrics.GaussianOneRunBound.to_dict`, plus the ``score`` it came from).

    Reported beside the assumption-free bound, never in the verdict: it holds only if the
    canaries' IN and OUT scores are normal with equal variances, which the p-values check.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["bound under the Gaussian assumption"]
    score: str
    epsilon: float = Field(ge=0)
    mu: float = Field(ge=0)
    mu_estimate: float
    confidence: float = Field(gt=0, lt=1)
    delta: float = Field(gt=0, lt=1)
    canaries: int = Field(ge=0)
    included: int = Field(ge=0)
    excluded: int = Field(ge=0)
    t_statistic: float
    normality_p_included: float = Field(ge=0, le=1)
    normality_p_excluded: float = Field(ge=0, le=1)
    normality_test: str
    equal_variance_p: float = Field(ge=0, le=1)

    @property
    def normality_p(self) -> float:
        """The smaller of the two groups' normality p-values."""
        return min(self.normality_p_included, self.normality_p_excluded)


class SecretGroupRecord(_Part):
    """The secret canaries of one coin outcome (trained on, or not): how exposed and how often
    extracted. The two groups side by side say whether training, not chance, exposed them."""

    canaries: int = Field(ge=0)
    # Carlini et al. 2019's exposure, log2 |R| - log2 rank, estimated from sampled candidates:
    # the mean over the group's canaries, and the largest.
    mean_exposure: float | None
    max_exposure: float | None
    # Greedy decoding from the prefix reproduced the whole secret: count, rate and its
    # Clopper-Pearson interval at the record's confidence.
    extracted: int = Field(ge=0)
    extraction_rate: float | None = Field(ge=0, le=1)
    extraction_interval: tuple[float, float] | None


class SecretCanaryRecord(_Part):
    """What the secret canaries of a language model showed beyond the ε lower bound.

    ``space_bits`` is log2 of the number of possible secrets (the largest exposure); each
    canary's rank is estimated among ``candidates`` secrets drawn uniformly from that space, so
    exposures above ``exposure_cap`` = log2(candidates + 1) are not resolved: each canary's is
    taken at most at the cap. ``enumerated``: the space was no larger than the candidates asked
    for, so every secret of it was ranked, once (``candidates`` is then the space's size and
    ``exposure_cap`` = ``space_bits``): each exposure is exact.
    """

    design: str
    secret_length: int = Field(ge=1)
    repeats: int = Field(ge=1)
    space_bits: float = Field(ge=0)
    candidates: int = Field(ge=1)
    enumerated: bool = False
    exposure_cap: float = Field(ge=0)
    included: SecretGroupRecord
    excluded: SecretGroupRecord


class CanaryRecord(Record):
    """``audit/canaries/<name>.json``: one canary audit's ε lower bound on one trained model.

    ``epsilon_lower_bound`` holds with probability ``confidence`` at ``delta``; ``max_epsilon``
    is the largest bound these canaries could show; ``by_score`` holds each score's bound
    (:meth:`auditml.metrics.OneRunBound.to_dict`), ``best_score`` the one reported.
    """

    attack: str
    canaries: int = Field(ge=0)
    included: int = Field(ge=0)
    delta: float = Field(ge=0, lt=1)
    confidence: float = Field(gt=0, lt=1)
    epsilon_lower_bound: float = Field(ge=0)
    best_score: str
    max_epsilon: float = Field(ge=0)
    by_score: dict[str, OneRunBoundRecord]
    run: RunFacts
    # black_box: only the trained model's outputs; all_iterates: every noisy DP-SGD update (the
    # DP-SGD threat model); last_iterate: the final weights.
    threat_model: Literal["black_box", "all_iterates", "last_iterate"] = "black_box"
    # The f-DP test of the accountant's whole claimed curve (auditml.metrics.dp.one_run_fdp), when
    # run.
    claim_test: CanaryClaimTestRecord | None = None
    # The all-iterates mechanism check (auditml.audit.canaries.white_box.check_mechanism).
    mechanism_check: MechanismCheckRecord | None = None
    # True when the audit contradicts the run's DP claim; None without a claim.
    violation: bool | None = None
    # Each assumption of the accountant, checked (auditml.audit.canaries.assumptions); None in
    # records written before the checks existed. A failed check makes ``violation`` true.
    assumptions: list[AssumptionCheck] | None = None
    # The ε lower bound under the Gaussian assumption, beside the verdict (not in it); None in
    # records written before it existed, or when the canaries cannot fit the model.
    gaussian_bound: GaussianBoundRecord | None = None
    # Secret canaries of a language model: exposure and extraction (None for other canaries).
    secrets: SecretCanaryRecord | None = None

    @property
    def judged(self) -> bool:
        """Whether the bound may be compared with the run's claim: not for secret canaries
        trained on more than once (DP-SGD protects each as a group of rows, not as one)."""
        return self.secrets is None or self.secrets.repeats == 1

    @property
    def failed_checks(self) -> list[str]:
        """The assumptions the training broke (empty when none, or none were checked)."""
        return [check.check for check in self.assumptions or [] if check.status == "failed"]

    @property
    def unchecked_checks(self) -> list[str]:
        """The assumptions the audit could not check (their evidence was not seen): without a
        contradiction the claim is then "not verified", never "consistent"."""
        return [check.check for check in self.assumptions or [] if check.status == "not_checked"]

    @model_validator(mode="after")
    def _best_score_recorded(self) -> CanaryRecord:
        if self.best_score not in self.by_score:
            raise ValueError(f"best_score {self.best_score!r} is not one of by_score's scores "
                             f"{sorted(self.by_score)}")
        return self


class ManyRunsRecord(Record):
    """``auditml audit-dp``: K runs of a DP recipe, one gradient canary each, audited together.

    ``epsilon_lower_bound`` (:meth:`auditml.metrics.EpsilonLowerBound.to_dict`, its ``alpha``
    inside) and ``claim_test`` (:meth:`auditml.metrics.dp.trials_claim_test.ClaimTest.to_dict`, its
    ``confidence`` inside) each hold at their own level; ``violation`` holds at ``confidence``
    (the claim test alone; records written before 2026-12 OR-ed both tests at 97.5 % each).
    ``scores`` and ``coins`` are each run's canary score and whether its canary was included.
    """

    experiment_name: str
    runs: int = Field(ge=1)
    included: int = Field(ge=0)
    delta: float
    claimed_epsilon: float
    confidence: float
    epsilon_lower_bound: EpsilonBoundRecord
    claim_test: ManyRunsClaimTestRecord
    violation: bool
    scores: list[float]
    coins: list[bool]


# -- beyond membership ----------------------------------------------------------------------------


class AttributeScoreRecord(_Part):
    """An attribute attack's accuracy (Clopper–Pearson interval) and AUC (None: undefined)."""

    records: int = Field(ge=1)
    accuracy: float = Field(ge=0, le=1)
    accuracy_interval: tuple[float, float]
    auc: float | None = Field(default=None, ge=0, le=1)


class AdvantageRecord(_Part):
    """:class:`auditml.metrics.attribute.Advantage`: accuracy minus the baseline's."""

    advantage: float = Field(ge=-1, le=1)
    interval: tuple[float, float]
    p_value: float = Field(ge=0, le=1)
    attack_only: int = Field(ge=0)
    discordant: int = Field(ge=0)


class MemberGapRecord(_Part):
    """:class:`auditml.metrics.attribute.MemberGap`: accuracy on members minus non-members."""

    gap: float = Field(ge=-1, le=1)
    p_value: float = Field(ge=0, le=1)


class AttributeAttackResult(_Part):
    settings: dict[str, JsonValue]
    members: AttributeScoreRecord
    nonmembers: AttributeScoreRecord
    member_gap: MemberGapRecord
    # Over the imputation baseline on the same records; None for the baseline itself.
    advantage_members: AdvantageRecord | None = None
    advantage_nonmembers: AdvantageRecord | None = None


class AttributeInferenceRecord(Record):
    """``audit/attribute_inference.json``: how well the sensitive attribute of the members (and
    of non-members) is inferred, by each attack and by the imputation baseline.

    These are *estimates* on the audited records, not bounds. Two verdicts, each at
    ``confidence`` with a Bonferroni correction over the model-querying attacks:
    ``beyond_imputation``: some attack infers the members' attribute more often than imputation
    (one-sided McNemar test); ``member_specific``: some attack infers it more often for members
    than for non-members (one-sided Fisher test) — the model reveals its *training* members'
    attribute, not only what any record's outputs reveal. ``best_attack`` has the largest
    advantage over imputation on members.
    """

    attack: Literal["attribute_inference"] = "attribute_inference"
    kind: Literal["estimate"] = "estimate"
    attribute: str
    categories: list[str]
    auxiliary_records: int = Field(ge=1)
    confidence: float = Field(gt=0, lt=1)
    baseline: str
    attacks: dict[str, AttributeAttackResult]
    best_attack: str | None
    beyond_imputation: bool
    member_specific: bool
    run: RunFacts


class InversionClassRecord(_Part):
    """One class's reconstruction: what the evaluator called it, and how near it lies to the
    class's nearest member and nearest non-member (balanced subsamples of
    ``compared_per_side`` each)."""

    label: int = Field(ge=0)
    predicted: int = Field(ge=0)
    member_distance: float = Field(ge=0)
    nonmember_distance: float = Field(ge=0)
    compared_per_side: int = Field(ge=0)


class ModelInversionRecord(Record):
    """``audit/model_inversion.json``: one reconstruction per class (figure:
    ``model_inversion_gallery.png``), judged by an independent evaluation classifier
    (``evaluation_accuracy``; its own ``evaluator_held_out_accuracy`` beside) and by whether it
    lies nearer the class's members than its non-members (``fraction_member_closer``, one-sided
    sign test ``p_value``). Estimates, not bounds."""

    attack: Literal["model_inversion"] = "model_inversion"
    kind: Literal["estimate"] = "estimate"
    settings: dict[str, JsonValue]
    notes: list[str]
    evaluator_held_out_accuracy: float = Field(ge=0, le=1)
    evaluator_train_size: int = Field(ge=1)
    evaluation_accuracy: float = Field(ge=0, le=1)
    classes: list[InversionClassRecord]
    member_closer: int = Field(ge=0)
    ties: int = Field(ge=0)
    fraction_member_closer: float = Field(ge=0, le=1)
    p_value: float = Field(ge=0, le=1)
    run: RunFacts


# Each inference audit's record type, by audit name (``audit/<name>.json``).
InferenceRecord = AttributeInferenceRecord | ModelInversionRecord
INFERENCE_RECORDS: dict[str, type[InferenceRecord]] = {
    "attribute_inference": AttributeInferenceRecord,
    "model_inversion": ModelInversionRecord,
}
