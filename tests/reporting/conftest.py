"""Run directories for report tests, written with RunDirectory's own writers and records.

The fixtures ``make_run``, ``add_audit`` and ``add_canary_audit`` hand out the writers below.

Scores are evenly spaced normal quantiles (deterministic); members score ``shift`` higher, so
a larger shift is a leakier model. Nothing is trained: reports only read files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm

from auditml.audit.results import gdp_estimate_record
from auditml.config import parse_config
from auditml.data.split import make_split
from auditml.figures.plots import gallery_figure, png_bytes
from auditml.metrics import (
    Split,
    epsilon_lower_bound,
    gdp_lower_bound,
    members_singled_out,
    membership_intervals,
    membership_metrics,
)
from auditml.records import (
    AssumptionCheck,
    AttackRecord,
    CanaryCounts,
    CanaryRecord,
    DataFileRecord,
    RunFacts,
    SecretCanaryRecord,
    SecretGroupRecord,
    TrainingRecord,
    Versions,
)
from auditml.run_directory import RunDirectory

ATTACK = "mia_threshold"


def planted_scores(shift: float, count: int = 200) -> tuple[np.ndarray, np.ndarray]:
    quantiles = norm.ppf((np.arange(count) + 0.5) / count)
    scores = np.concatenate([quantiles + shift, quantiles])
    is_member = np.concatenate([np.ones(count, bool), np.zeros(count, bool)])
    return scores, is_member


def write_run(
    root: Path,
    name: str,
    *,
    dp: bool = False,
    epsilon: float | None = None,
    target_epsilon: float | None = None,
    noise_multiplier: float | None = None,
    delta: float | None = None,
    val_acc: float = 0.9,
    shift: float = 0.5,
    audit: bool = True,
    experiment_name: str | None = None,
    dataset: str = "digits",
    data_file: DataFileRecord | None = None,
) -> Path:
    """A trained (and by default audited with ``mia_threshold``) run directory."""
    run = RunDirectory(root / name)
    run.write_config(parse_config({"experiment_name": name}))
    run.write_model(torch.nn.Linear(2, 2), "mlp")
    run.write_split(make_split(np.arange(1797) % 10, 100, 0, validation_from_pool=True))
    run.write_training(TrainingRecord(
        experiment_name=experiment_name or name, dataset=dataset, arch="mlp", train_size=100,
        seed=0, device="cpu", val_acc=val_acc, train_acc=min(1.0, val_acc + 0.05),
        nonmember_acc=val_acc, canaries=CanaryCounts(count=0, included=0, kind="mislabeled"),
        losses=[1.0], history=[], dp_enabled=dp, epsilon=epsilon, target_epsilon=target_epsilon,
        delta=delta, noise_multiplier=noise_multiplier, noise_calibrated=None,
        max_grad_norm=None, sample_rate=None, steps=None, accountant="prv" if dp else None,
        grad_sample_mode=None, wall_time_s=1.0,
        versions=Versions(python="3", torch="2", opacus="1", auditml="0", numpy="2"),
        data_file=data_file,
    ))
    run.write_manifest()
    if audit:
        write_audit(run.path, ATTACK, shift)
    return run.path


def _facts(run: RunDirectory) -> RunFacts:
    training = run.read_training()
    return RunFacts(
        experiment_name=training.experiment_name, dp_enabled=training.dp_enabled,
        epsilon=training.epsilon, delta=training.delta, val_acc=training.val_acc,
        training_id=run.require_trained().training_id,
    )


def write_audit(
    run_dir: Path, attack: str, shift: float, *, gallery: bool = False,
    scores: tuple[np.ndarray, np.ndarray] | None = None, older_bound: bool = False,
    intervals: bool = False,
) -> None:
    """Write ``attack``'s result as the audit would (with an exposed-examples PNG if asked).

    ``scores`` (scores, is_member) replace the planted ones; ``older_bound`` writes the bound
    as auditml did before it recorded the bound's tail.
    """
    run = RunDirectory(run_dir)
    scores, is_member = planted_scores(shift) if scores is None else scores
    delta = run.read_training().delta
    bound = epsilon_lower_bound(scores, is_member, delta=delta or 0.0, confidence=0.95,
                                threshold=Split())
    recorded_bound = bound.to_dict()
    if older_bound:
        recorded_bound.pop("tail", None)
    bootstrap = membership_intervals(scores, is_member, seed=0) if intervals else None
    exposed = np.argsort(-np.where(is_member, scores, -np.inf))[:8]
    gallery_name = None
    if gallery:
        images = np.random.default_rng(0).random((len(exposed), 1, 8, 8))
        captions = [f"#{int(i)} y={int(i) % 10}" for i in exposed]
        run.audit_dir.mkdir(parents=True, exist_ok=True)
        run.gallery_path(attack).write_bytes(
            png_bytes(gallery_figure(images, captions, title=f"{attack}: most exposed"))
        )
        gallery_name = run.gallery_path(attack).name
    record = AttackRecord(
        attack=attack, settings={"metric": "loss"}, fitted={},
        counts={"members": int(is_member.sum()), "nonmembers": int((~is_member).sum())},
        metrics=membership_metrics(scores, is_member).to_dict(),
        epsilon_lower_bound=recorded_bound,
        # As the audit records it: with its interval since intervals exist.
        gdp_estimate=gdp_estimate_record(scores, is_member, bootstrap, delta=delta or 1e-5),
        per_class={},
        most_exposed=[
            {"example": int(i), "label": int(i) % 10, "score": float(scores[i])} for i in exposed
        ],
        compute={"seconds": 0.0, "reference_models": 0}, run=_facts(run),
        exposed_gallery=gallery_name,
        # As the audit records them since bootstrap intervals and the GDP bound (else as before).
        intervals=bootstrap.to_dict() if bootstrap is not None else None,
        gdp_lower_bound=gdp_lower_bound(scores, is_member, delta=delta or 1e-5).to_dict()
        if intervals else None,
        singled_out=members_singled_out(scores, is_member).to_dict() if intervals else None,
    )
    run.write_attack(record, scores, is_member)


def write_canary_audit(
    run_dir: Path, epsilon_bound: float, *, name: str = "dp_audit",
    threat_model: str = "black_box", violation: bool | None = None,
    assumptions: list[AssumptionCheck] | None = None, secret_repeats: int | None = None,
) -> None:
    """A canary audit's record; ``secret_repeats`` makes it a language model's secret canaries,
    each trained on that many times."""
    run = RunDirectory(run_dir)
    one = {"epsilon": epsilon_bound, "max_epsilon": 3.1, "correct": 40, "guesses": 42}
    group = SecretGroupRecord(canaries=500, mean_exposure=1.5, max_exposure=4.0, extracted=0,
                              extraction_rate=0.0, extraction_interval=(0.0, 0.01))
    secrets = None if secret_repeats is None else SecretCanaryRecord(
        design="digits", secret_length=6, repeats=secret_repeats, space_bits=19.9,
        candidates=255, exposure_cap=8.0, included=group, excluded=group)
    run.write_canary(name, CanaryRecord(
        attack=name, canaries=1000, included=497, delta=run.read_training().delta or 0.0,
        confidence=0.95, epsilon_lower_bound=epsilon_bound, best_score="loss", max_epsilon=3.1,
        by_score={"loss": one}, run=_facts(run), threat_model=threat_model,  # type: ignore[arg-type]
        violation=violation, assumptions=assumptions, secrets=secrets,
    ))


def shuffled_loader_checks() -> list[AssumptionCheck]:
    """The checks of a loop that draws shuffled fixed-size batches (one failed, one warning)."""
    return [
        AssumptionCheck(check="loader", assumption="batches are drawn by Poisson sampling",
                        status="failed", finding="not_applicable",
                        detail="the loader draws shuffled fixed-size batches of 128 <b>",
                        epsilon_lower_bound=4.46),
        AssumptionCheck(check="steps", assumption="every step that adds noise is accounted",
                        status="passed", detail="225 noisy steps seen, all accounted"),
        AssumptionCheck(check="noise_source", assumption="secure generator", status="warning",
                        detail="the noise comes from PyTorch's default generator"),
        AssumptionCheck(check="hidden_state", assumption="no mixing", status="not_checked",
                        detail="the model was not seen (pass model= to CanaryAudit)"),
    ]




@pytest.fixture
def make_run() -> Callable[..., Path]:
    return write_run


@pytest.fixture
def add_audit() -> Callable[..., None]:
    return write_audit


@pytest.fixture
def add_canary_audit() -> Callable[..., None]:
    return write_canary_audit


@pytest.fixture
def shuffled_checks() -> list[AssumptionCheck]:
    return shuffled_loader_checks()


@pytest.fixture
def shuffled_run(tmp_path: Path) -> Path:
    """A DP run (ε = 2) whose all-iterates canary audit found its loader broke Poisson sampling;
    its bound (0.3) is below the claim: only the broken assumption fails it."""
    run = write_run(tmp_path / "results", "shuffled", dp=True, epsilon=2.0, target_epsilon=2.0,
                    delta=1e-5, shift=0.1)
    write_canary_audit(run, 0.3, name="dp_audit_all_iterates", threat_model="all_iterates",
                       violation=True, assumptions=shuffled_loader_checks())
    return run
