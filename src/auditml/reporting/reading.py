"""Every read of run files that a report makes, in one place.

Run directories are read through :class:`~auditml.run_directory.RunDirectory`, which validates
each file as its typed record (:mod:`auditml.records`), checks the trained files against the
manifest, each attack's scores against their hash, and refuses results made for an earlier
training (stale). This module turns those records into the report's own values
(:class:`~auditml.reporting.rows.ComparisonRow`, :class:`~auditml.reporting.views.RunView`);
nothing else in :mod:`auditml.reporting` opens a run file. Numbers are copied, never
recomputed; only ROC curves are computed, from the saved scores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from auditml.errors import RunDirectoryError
from auditml.metrics import MembershipMetrics, MetricsInputError, RocCurve, roc_curve
from auditml.metrics.dp.trials_epsilon import epsilon_bound_tail
from auditml.records import (
    AttackRecord,
    AttributeInferenceRecord,
    AuditedModelRecord,
    CanaryRecord,
    ModelInversionRecord,
    TrainingRecord,
)
from auditml.reporting.rows import ONE_PERCENT_FPR, ComparisonRow
from auditml.reporting.verdict import canary_verdict, threshold_words
from auditml.reporting.views import (
    AttackView,
    CanaryView,
    InferenceView,
    RunView,
    SkippedAudit,
    TrainingView,
)
from auditml.run_directory import CONFIG_FILE, RunDirectory

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def model_label(
    dp_enabled: bool | None, target_epsilon: float | None, noise_multiplier: float | None
) -> str:
    if dp_enabled is None:
        return "DP unknown"
    if not dp_enabled:
        return "No DP"
    if target_epsilon is not None:
        return f"ε={target_epsilon:g}"
    if noise_multiplier is not None:
        return f"σ={noise_multiplier:g}"
    return "DP"


def _open_audited(run_dir: Path) -> tuple[RunDirectory, str, TrainingView]:
    """The run, its training id and its facts, once its files are complete and unchanged: a
    run ``auditml train`` wrote, or a Python-API audit saved with ``.save()``."""
    run = RunDirectory(run_dir)
    config_hint = str(run.path / CONFIG_FILE) if (run.path / CONFIG_FILE).is_file() else None
    manifest = run.require_audited(config_hint)
    facts = (_facts(run, run.read_training()) if manifest.source == "train"
             else _saved_facts(run, run.read_audited_model()))
    return run, manifest.training_id, facts


def _saved_facts(run: RunDirectory, model: AuditedModelRecord) -> TrainingView:
    """What a saved Python-API audit knows of its model; the rest stays unknown (None)."""
    from_caller = model.source != "CanaryAudit"  # CanaryAudit's ε is the loop's accountant's
    return TrainingView(
        run_name=model.experiment_name,
        run_dir=str(run.path),
        # A claim auditml did not check the training against: the label says whose it is.
        label=model_label(model.dp_enabled, model.epsilon, None)
        + (" claimed in Python" if model.dp_enabled and from_caller else ""),
        dataset=None,
        arch=model.arch,
        dp_enabled=model.dp_enabled,
        epsilon=model.epsilon,
        delta=model.delta,
        val_acc=None,
        train_acc=model.train_acc,
        audited_in_python=True,
        epsilon_from_caller=from_caller,
    )


def _facts(run: RunDirectory, training: TrainingRecord) -> TrainingView:
    return TrainingView(
        run_name=training.experiment_name,
        run_dir=str(run.path),
        label=model_label(training.dp_enabled, training.target_epsilon, training.noise_multiplier),
        dataset=training.dataset,
        arch=training.arch,
        dp_enabled=training.dp_enabled,
        epsilon=training.epsilon,
        delta=training.delta,
        val_acc=training.val_acc,
        train_acc=training.train_acc,
        val_perplexity=training.val_perplexity,
        train_size=training.train_size,
        data_file=training.data_file,
    )


def _metrics(run: RunDirectory, record: AttackRecord) -> MembershipMetrics:
    metrics = record.membership_metrics()
    if ONE_PERCENT_FPR not in metrics.tpr_at_fpr:
        raise RunDirectoryError(
            f"{run.attack_path(record.attack)} has no TPR at {ONE_PERCENT_FPR:g} FPR: "
            f"{run.audit_hint(record.attack)}"
        )
    return metrics


def _bound(record: AttackRecord) -> tuple[float, float | None, str | None]:
    """The ε lower bound, its confidence (1 − alpha, as recorded beside it) and its tail (for
    older records, derived from their counts by
    :func:`auditml.metrics.dp.trials_epsilon.epsilon_bound_tail`)."""
    confidence = 1 - record.epsilon_lower_bound.alpha
    tail = (epsilon_bound_tail(record.epsilon_lower_bound.as_written())
            if record.epsilon_bound > 0 else None)
    return record.epsilon_bound, confidence, tail


def _view_intervals(record: AttackRecord) -> dict[str, Any]:
    """The bootstrap intervals and the GDP lower bound of an attack page (absent: None)."""
    intervals = record.membership_intervals()
    gdp_bound = record.gdp_lower_bound
    gdp_interval = record.gdp_estimate.interval  # [low, high], checked by the record
    return {
        "auc_interval": None if intervals is None else intervals.auc,
        "tpr_intervals": {} if intervals is None else dict(intervals.tpr_at_fpr),
        "gdp_lower_bound": None if gdp_bound is None else gdp_bound.epsilon,
        "gdp_interval": None if gdp_interval is None else (float(gdp_interval[0]),
                                                           float(gdp_interval[1])),
    }


def _row_intervals(record: AttackRecord) -> dict[str, Any]:
    """The compared attack's intervals on its AUC and TPR at 1% FPR (absent: None)."""
    intervals = record.membership_intervals()
    return {
        "auc_interval": None if intervals is None else intervals.auc,
        "tpr_at_1pct_fpr_interval": None if intervals is None
        else intervals.tpr_at_fpr.get(ONE_PERCENT_FPR),
    }


def _curve(run: RunDirectory, record: AttackRecord) -> RocCurve:
    scores, is_member = run.read_scores(record)
    try:
        return roc_curve(scores, is_member)
    except MetricsInputError as error:
        raise RunDirectoryError(
            f"scores file {run.scores_path(record.attack)} is unusable ({error}): "
            f"{run.audit_hint(record.attack)}"
        ) from None


def load_comparison_row(run_dir: Path, attack: str) -> tuple[ComparisonRow, RocCurve]:
    """One run's row of a comparison of ``attack``, and that attack's ROC curve."""
    run, training_id, facts = _open_audited(run_dir)
    record = run.read_attack(attack, training_id=training_id)
    curve = _curve(run, record)
    metrics = _metrics(run, record)
    bound, confidence, tail = _bound(record)

    strongest, strongest_metrics = attack, metrics
    for other in run.attack_names():
        if other == attack:
            continue
        try:
            candidate_record = run.read_attack(other, training_id=training_id)
            run.read_scores(candidate_record)
            candidate = _metrics(run, candidate_record)
        except RunDirectoryError:
            continue  # a stale or unreadable audit of another attack says nothing of this model
        key = (candidate.tpr_at_fpr[ONE_PERCENT_FPR], candidate.auc)
        if key > (strongest_metrics.tpr_at_fpr[ONE_PERCENT_FPR], strongest_metrics.auc):
            strongest, strongest_metrics = other, candidate

    row = ComparisonRow(
        label=facts.label,
        run_name=facts.run_name,
        run_dir=facts.run_dir,
        dataset=_dataset_name(facts),
        dataset_sha256=None if facts.data_file is None else facts.data_file.sha256,
        dp_enabled=facts.dp_enabled,
        epsilon=facts.epsilon,
        delta=facts.delta,
        val_acc=facts.val_acc,
        val_perplexity=facts.val_perplexity,
        auc=metrics.auc,
        tpr_at_1pct_fpr=metrics.tpr_at_fpr[ONE_PERCENT_FPR],
        epsilon_lower_bound=bound,
        bound_confidence=confidence,
        bound_tail=tail,
        bound_threshold=threshold_words(record.epsilon_lower_bound),
        **_row_intervals(record),
        members=metrics.members,
        nonmembers=metrics.nonmembers,
        strongest_attack=strongest,
        strongest_auc=strongest_metrics.auc,
        strongest_tpr_at_1pct_fpr=strongest_metrics.tpr_at_fpr[ONE_PERCENT_FPR],
        strongest_members=strongest_metrics.members,
        strongest_nonmembers=strongest_metrics.nonmembers,
        **_telling_canary_audit(run, training_id, facts.dp_enabled),
        **_beyond_membership(run, training_id),
    )
    return row, curve


def _dataset_name(facts: TrainingView) -> str | None:
    """The run's dataset as a comparison names it: the built-in one's name, or the format and
    file name of the user's data ("csv (adult.csv)"); None when unknown (audited in Python)."""
    if facts.dataset is None or facts.data_file is None:
        return facts.dataset
    return f"{facts.dataset} ({Path(facts.data_file.path).name})"


_THREAT_ORDER = {"all_iterates": 0, "last_iterate": 1, "black_box": 2}


def _telling_canary_audit(
    run: RunDirectory, training_id: str, dp_enabled: bool
) -> dict[str, object]:
    """The row fields of the run's most telling current canary audit (none: no fields)."""
    records = []
    # An unreadable or stale canary audit says nothing of this model.
    for name, record in _current(run, run.canary_names(), run.read_canary, training_id, []):
        if not record.judged:  # a bound on a group of rows, not on one
            continue
        violated = canary_verdict(
            record.violation, dp_enabled=dp_enabled, claimed_epsilon=record.run.epsilon,
            epsilon_lower_bound=record.epsilon_lower_bound,
        )
        records.append((not violated, _THREAT_ORDER.get(record.threat_model, 9), name,
                        record, violated))
    if not records:
        return {}
    *_, name, record, violated = min(records, key=lambda item: item[:3])
    return {"canary_audit": name, "canary_threat_model": record.threat_model,
            "canary_bound": record.epsilon_lower_bound, "canary_violation": violated,
            "canary_failed_checks": record.failed_checks,
            "canary_unchecked": record.unchecked_checks}


def _beyond_membership(run: RunDirectory, training_id: str) -> dict[str, object]:
    """The row fields of the run's current attribute-inference and model-inversion audits."""
    fields: dict[str, object] = {}
    # An unreadable or stale audit says nothing of this model.
    for _, record in _current(run, run.inference_names(), run.read_inference, training_id, []):
        if isinstance(record, AttributeInferenceRecord) and record.best_attack is not None:
            best = record.attacks[record.best_attack]
            fields.update(
                attribute_advantage=best.advantage_members.advantage
                if best.advantage_members is not None else None,
                attribute_gap=best.member_gap.gap,
                attribute_leak=record.beyond_imputation and record.member_specific,
            )
        elif isinstance(record, ModelInversionRecord):
            fields.update(
                inversion_recognised=record.evaluation_accuracy,
                inversion_member_closer=(
                    record.member_closer, len(record.classes) - record.ties, record.p_value
                ),
            )
    return fields


def _gallery(run: RunDirectory, record: AttackRecord) -> bytes | None:
    try:
        png = run.gallery_path(record.attack).read_bytes()
    except OSError:
        return None  # the gallery illustrates; the numbers stand without it
    return png if png.startswith(_PNG_MAGIC) else None


def _attack_view(run: RunDirectory, record: AttackRecord) -> AttackView:
    curve = _curve(run, record)
    metrics = _metrics(run, record)
    bound, confidence, tail = _bound(record)
    return AttackView(
        name=record.attack,
        settings=dict(record.settings),
        members=metrics.members,
        nonmembers=metrics.nonmembers,
        auc=metrics.auc,
        tpr_at_fpr=dict(metrics.tpr_at_fpr),
        advantage=metrics.advantage,
        epsilon_lower_bound=bound,
        bound_confidence=confidence,
        gdp_epsilon_estimate=record.gdp_estimate.epsilon,
        fpr=curve.fpr,
        tpr=curve.tpr,
        most_exposed=list(record.most_exposed),
        exposed_png=_gallery(run, record) if record.exposed_gallery else None,
        bound_tail=tail,
        threshold=threshold_words(record.epsilon_lower_bound),
        singled_out=record.members_singled_out(),
        tied_at_top=metrics.tied_at_top,
        tied_at_top_nonmembers=metrics.tied_at_top_nonmembers,
        **_view_intervals(record),
    )


def _canary_view(name: str, record: CanaryRecord) -> CanaryView:
    return CanaryView(
        name=name,
        canaries=record.canaries,
        included=record.included,
        delta=record.delta,
        confidence=record.confidence,
        epsilon_lower_bound=record.epsilon_lower_bound,
        best_score=record.best_score,
        max_epsilon=record.max_epsilon,
        threat_model=record.threat_model,
        violation=record.violation,
        claim_p_value=None if record.claim_test is None else record.claim_test.p_value,
        mechanism_check=record.mechanism_check,
        assumptions=record.assumptions,
        claim_rejected=None if record.claim_test is None else record.claim_test.violation,
        gaussian_bound=record.gaussian_bound,
        secrets=record.secrets,
    )


def load_run_view(run_dir: Path) -> RunView:
    """The audited run in ``run_dir``: how it was trained and every usable audit of it.

    Stale or unreadable audits are left out and listed in ``skipped`` with the reason; a run
    with no usable audit at all raises :class:`RunDirectoryError` naming the command to run.
    """
    run, training_id, facts = _open_audited(run_dir)
    attacks: list[AttackView] = []
    skipped: list[SkippedAudit] = []
    for name in run.attack_names():
        try:
            attacks.append(_attack_view(run, run.read_attack(name, training_id=training_id)))
        except RunDirectoryError as error:
            skipped.append(SkippedAudit(name, str(error)))
    canaries = [
        _canary_view(name, record)
        for name, record in _current(run, run.canary_names(), run.read_canary, training_id,
                                     skipped)
    ]
    inference = [
        InferenceView(name, record, _gallery_png(run, name))
        for name, record in _current(run, run.inference_names(), run.read_inference,
                                     training_id, skipped)
    ]
    if not attacks and not canaries and not inference:
        reasons = "; ".join(f"{item.name}: {item.reason}" for item in skipped)
        raise RunDirectoryError(
            f"run {run.path} has no usable audit{f' ({reasons})' if reasons else ''}: "
            f"{run.audit_hint(None, first=True)}"
        )
    return RunView(facts=facts, attacks=attacks, canaries=canaries, skipped=skipped,
                   inference=inference)


# The records a report reads that say which training they were made for.
R = TypeVar("R", CanaryRecord, AttributeInferenceRecord, ModelInversionRecord)


def _current(
    run: RunDirectory, names: list[str], read: Callable[[str], R], training_id: str,
    skipped: list[SkippedAudit],
) -> list[tuple[str, R]]:
    """Each named record ``read`` can read that was made for this training; the others go to
    ``skipped`` with the reason (unreadable, or stale: made before the run was retrained)."""
    current = []
    for name in names:
        try:
            record = read(name)
        except RunDirectoryError as error:
            skipped.append(SkippedAudit(name, str(error)))
            continue
        if record.run.training_id not in (None, training_id):
            skipped.append(SkippedAudit(
                name, f"stale (made before the run was retrained): {run.audit_hint(name)}",
            ))
            continue
        current.append((name, record))
    return current


def _gallery_png(run: RunDirectory, name: str) -> bytes | None:
    """The audit's gallery figure, when it is there and is a PNG."""
    try:
        png = run.inference_figure_path(name, "gallery").read_bytes()
    except OSError:
        return None
    return png if png.startswith(_PNG) else None


_PNG = b"\x89PNG\r\n\x1a\n"

