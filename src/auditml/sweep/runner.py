"""``auditml sweep``: train one run per ε, audit each, tabulate and plot the trade-off.

Training goes through ``auditml train``'s own code (:func:`auditml.training.train`) as jobs on
the configured executor (``audit.executor``: a local process pool, serial, or Ray), and auditing
through the one audit core (:func:`auditml.audit.runner.run_audit`). A finished run whose stored
config is the one wanted is reused, as is a current audit result with the same settings; an
interrupted run (no manifest) is trained again.

The sweep's own files (the table, the figures, ``tuning.json``) replace only the ones an earlier
sweep wrote in that directory, as it wrote them (``.auditml-report.json`` lists them with their
SHA-256: :func:`auditml.reporting.output.install_owned_files`); a user's file in the way is
refused before any model trains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from auditml.audit.plan import plan_audit
from auditml.audit.runner import run_audit
from auditml.config import AuditMLConfig, parse_config
from auditml.errors import AuditMLError, ConfigError, RunDirectoryError
from auditml.figures.audit_figures import draw_figure
from auditml.fileio import sha256_of_file
from auditml.reporting.output import check_owned_files, install_owned_files
from auditml.run_directory import RunDirectory, SweepDirectory
from auditml.sweep.figures import FIGURES, sweep_figures
from auditml.sweep.plan import parse_epsilons, run_config, sweep_attacks
from auditml.sweep.report import SweepRecord, markdown, read_sweep_record, sweep_rows
from auditml.sweep.tuner import Trial, parse_tuning, plan_trials, tuning_result
from auditml.training.executors import default_workers, make_executor
from auditml.training.privacy import check_noise_plan
from auditml.training.tuning_privacy import StoppingRule


@dataclass(frozen=True)
class TrainJob:
    """Train one config with ``auditml train``'s code; picklable (the config in JSON form)."""

    config: dict[str, Any]

    def run(self) -> str:
        from auditml.training import train

        config = parse_config(self.config, "sweep job")
        train(config, console=Console(quiet=True))
        return str(config.run_dir)


@dataclass(frozen=True)
class SweepResult:
    directory: SweepDirectory
    record: SweepRecord
    trained: list[float]  # the ε values trained by this call (the others were reused)


def run_sweep(
    config: AuditMLConfig,
    epsilons: Sequence[str | float],
    attacks: Sequence[str] | None = None,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    tune: Sequence[str] | None = None,
    tune_stopping: str | None = None,
    console: Console | None = None,
) -> SweepResult:
    """Train and audit ``config`` at each ε and write the sweep's report; see the module doc.

    With ``tune`` (``NAME=V1,V2,...``), the random-stopping tuner also runs at each finite ε
    (:mod:`auditml.sweep.tuner`) and the report gives the ε of the whole tuning procedure.
    """
    console = console or Console(quiet=True)
    values = parse_epsilons(epsilons)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    sweep = SweepDirectory(out if out is not None else SweepDirectory.default_path(config))
    if sweep.path.exists() and not sweep.path.is_dir():
        raise RunDirectoryError(f"--out {sweep.path} exists and is not a directory")
    check_owned_files(sweep.path, sweep_files(sweep, tuning=bool(tune)), kind="sweep",
                      what="--out", legacy=_earlier_sweep_files)
    names = sweep_attacks(config, attacks)
    configs = {epsilon: run_config(config, epsilon, sweep) for epsilon in values}
    rule, trials = _plan_tuning(config, values, sweep, tune, tune_stopping)
    for run in [*configs.values(), *(t.config for ts in trials.values() for t in ts)]:
        # every refusal before the first model trains
        check_noise_plan(run)
        RunDirectory(run.run_dir).check_can_train()
    executor = make_executor(config.audit.executor, workers or config.audit.workers
                             or default_workers(), config.audit.ray_address)
    todo = [epsilon for epsilon, run in configs.items() if not is_finished(run)]
    for epsilon in values:
        if epsilon not in todo:
            console.print(f"ε={epsilon:g}: reusing {configs[epsilon].run_dir}", highlight=False)
    wanted = [configs[epsilon] for epsilon in todo] + [
        trial.config for ts in trials.values() for trial in ts if not is_finished(trial.config)]
    if wanted:
        console.print(f"training {len(wanted)} run(s): "
                      f"{', '.join(run.experiment_name for run in wanted)}", highlight=False)
        executor.run([TrainJob(run.model_dump(mode="json")) for run in wanted],
                     lambda index, run_dir: console.print(f"trained {run_dir}", highlight=False))
    for epsilon in values:
        audit_run(configs[epsilon], names, console)
    record = sweep_rows(config, [configs[e].run_dir for e in values], values, names)
    if rule is not None:
        results = [tuning_result(epsilon, ts, rule) for epsilon, ts in trials.items()]
        tuning = {"candidates": [t.candidate for ts in trials.values() for t in ts],
                  "results": [result.model_dump(mode="json") for result in results],
                  "summary": [result.summary() for result in results]}
        record = record.model_copy(update={"tuning": tuning})
    write_sweep_report(sweep, record)
    return SweepResult(sweep, record, todo)


def _plan_tuning(
    config: AuditMLConfig, epsilons: Sequence[float], sweep: SweepDirectory,
    tune: Sequence[str] | None, stopping: str | None,
) -> tuple[StoppingRule | None, dict[float, list[Trial]]]:
    """The tuner's stopping rule and trials at each finite ε (none without ``--tune``)."""
    if not tune:
        if stopping is not None:
            raise ConfigError("--tune-stopping needs --tune NAME=V1,V2,... (what to tune)")
        return None, {}
    plan = parse_tuning(tune, stopping)
    finite = [epsilon for epsilon in epsilons if not math.isinf(epsilon)]
    if not finite:
        raise ConfigError("--tune tunes DP runs: add a finite ε to --epsilons")
    return plan.rule, {epsilon: plan_trials(config, epsilon, plan, sweep) for epsilon in finite}


def is_finished(wanted: AuditMLConfig) -> bool:
    """Whether ``wanted.run_dir`` holds a complete, unchanged run trained with ``wanted``.

    The audit section and the run's name and place are not part of how it was trained.
    """
    run = RunDirectory(wanted.run_dir)
    try:
        run.require_trained()
        stored = run.read_config()
    except AuditMLError:
        return False
    return _training_part(stored) == _training_part(wanted)


def audit_run(config: AuditMLConfig, attacks: Sequence[str], console: Console) -> None:
    """Run those of ``attacks`` on ``config``'s run that have no current result there.

    A result is current when it was made for this training (its ``training_id``), its scores
    file matches it, and the attack's settings are the ones configured now.
    """
    run = RunDirectory(config.run_dir)
    training_id = run.require_trained().training_id
    planned = plan_audit(attacks, config.audit.attack_sections(),
                         task=config.dataset_spec.task).attacks
    missing = []
    for attack in planned:
        try:
            record = run.read_attack(attack.name, training_id=training_id)
            run.read_scores(record)
            current = record.settings == attack.settings()
        except AuditMLError:
            current = False
        if not current:
            missing.append(attack.name)
    if missing:
        console.print(f"auditing {run.path.name}: {', '.join(missing)}", highlight=False)
        run_audit(run.path, missing, given_config=config, draw=draw_figure)


def sweep_files(sweep: SweepDirectory, *, tuning: bool) -> list[str]:
    """The names of the files the sweep writes in its directory (the runs are apart)."""
    paths = [sweep.table_path("json"), sweep.table_path("md"),
             *(sweep.figure_path(name) for name in FIGURES)]
    return [path.name for path in [*paths, *([sweep.tuning_path] if tuning else [])]]


def write_sweep_report(sweep: SweepDirectory, record: SweepRecord) -> None:
    """``sweep.json``, ``sweep.md``, the figures and, after ``--tune``, ``tuning.json``; each
    file replaced atomically, and only over a file an earlier sweep wrote there."""
    contents = {
        sweep.table_path("json").name: (record.model_dump_json(indent=2) + "\n").encode(),
        sweep.table_path("md").name: markdown(record).encode(),
        **{sweep.figure_path(name).name: png for name, png in sweep_figures(record).items()},
    }
    if record.tuning is not None:
        contents[sweep.tuning_path.name] = (json.dumps(record.tuning, indent=2) + "\n").encode()
    install_owned_files(sweep.path, contents, kind="sweep", what="--out",
                        legacy=_earlier_sweep_files)


def _earlier_sweep_files(directory: Path) -> dict[str, list[str]]:
    """The files of a sweep written before sweeps listed them: recognised by a ``sweep.json``
    that is a sweep's table (a folder merely holding a file of that name is no sweep)."""
    sweep = SweepDirectory(directory)
    try:
        read_sweep_record(sweep)
    except (OSError, ValueError):
        return {}
    return {name: [sha256_of_file(directory / name)]
            for name in sweep_files(sweep, tuning=True) if (directory / name).is_file()}


def _training_part(config: AuditMLConfig) -> dict[str, Any]:
    dumped = config.resolved().model_dump(mode="json")
    for key in ("audit", "output_dir", "experiment_name"):
        dumped.pop(key)
    return dumped
