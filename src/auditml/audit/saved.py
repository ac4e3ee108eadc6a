"""A Python-API audit saved as a run directory, for ``auditml report`` and ``auditml compare``.

``AuditResults.save`` (:mod:`auditml.api`) and ``CanaryAuditResult.save``
(:mod:`auditml.audit.own_loop`) both come here: the directory is checked (new, empty or an
earlier save: :meth:`~auditml.run_directory.RunDirectory.check_can_save`), built under a
temporary name with the model's record and the manifest first, then the same ``audit/`` records
``auditml audit`` writes, each carrying the manifest's ``training_id``, and swapped in whole.
Every path is :class:`~auditml.run_directory.RunDirectory`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from auditml.fileio import staged_directory
from auditml.gradient_canary_record import GradientCanaryRecord
from auditml.records import (
    AttackRecord,
    AuditedModelRecord,
    CanaryRecord,
    InferenceRecord,
    RunFacts,
)
from auditml.run_directory import RunDirectory

R = TypeVar("R", AttackRecord, CanaryRecord, InferenceRecord)


def save_audit(
    path: Path,
    model: AuditedModelRecord,
    write: Callable[[RunDirectory, RunFacts], None],
    *,
    gradient_canaries: GradientCanaryRecord | None = None,
) -> Path:
    """Save an audit at ``path``: ``model``, the canaries' evidence when given, the manifest,
    then ``write(run, facts)`` writes the audit records (with ``facts`` as their ``run``)."""
    run = RunDirectory(path)
    run.check_can_save()
    with run.lock():
        run.check_can_save()  # again under the lock: another save may have come first
        with staged_directory(run.path) as staging:
            staged = RunDirectory(staging)
            staged.write_audited_model(model)
            if gradient_canaries is not None:
                staged.write_gradient_canaries(gradient_canaries)
            manifest = staged.write_manifest("api")
            write(staged, RunFacts(
                experiment_name=model.experiment_name, dp_enabled=model.dp_enabled,
                epsilon=model.epsilon, delta=model.delta, training_id=manifest.training_id,
            ))
    return run.path


def with_run_facts(record: R, facts: RunFacts) -> R:
    """``record`` saying it audited the model ``facts`` describe (name, claim, training id);
    the claim it was audited against, where it recorded one, is kept."""
    update = {"experiment_name": facts.experiment_name, "training_id": facts.training_id}
    return record.model_copy(update={"run": record.run.model_copy(update=update)})
