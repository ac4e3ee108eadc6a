"""What a sweep runs: the ε values, one config per ε, and the attacks — all checked before any
training starts.

Every run of a sweep is the given config with only ``training.dp`` changed: the same seed, so
the same members, non-members and validation set; the same recipe (whatever ``auditml train``
does for that config). ε = ∞ turns DP-SGD off.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from auditml.attacks import ATTACKS, DEFAULT_TEXT_ATTACK
from auditml.audit.plan import expand_names, plan_audit
from auditml.config import AuditMLConfig, parse_config
from auditml.errors import ConfigError
from auditml.run_directory import SweepDirectory

DEFAULT_EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0, math.inf)
# The attack that needs reference models, and the one that needs nothing but the model.
REFERENCE_ATTACK, CHEAP_ATTACK = "mia_lira", "mia_threshold"
# A language model's: the strongest attack that needs no other model (Min-K%++).
TEXT_ATTACK = DEFAULT_TEXT_ATTACK

# The sweep `auditml sweep` runs without --config: digits (embedded, no download), sized so that
# six runs finish in a few minutes on two CPU cores. Few members and many steps per member let
# the model without DP memorise them, so its leakage is measurable; δ is below 1/train_size.
DEFAULT_CONFIG: dict[str, Any] = {
    "experiment_name": "digits",
    "data": {"dataset": "digits", "train_size": 150, "batch_size": 50},
    "training": {
        "epochs": 20, "learning_rate": 0.02, "device": "auto",
        "dp": {"delta": 1e-4, "max_grad_norm": 1.0},
    },
}


def default_config() -> AuditMLConfig:
    return parse_config(DEFAULT_CONFIG, "the default sweep config")


def parse_epsilons(values: Sequence[str | float]) -> list[float]:
    """The ε values of ``--epsilons``, in the order given; ``inf`` means no DP.

    Refused: an empty list, a value that is not a positive number or ``inf``, ε = 0 (no noise
    reaches it), NaN, and repeats (two identical runs would tell nothing more).
    """
    if not values:
        raise ConfigError("--epsilons: give at least one ε, e.g. --epsilons 0.5 1 2 4 8 inf")
    epsilons: list[float] = []
    for value in values:
        try:
            epsilon = float(value)
        except ValueError:
            raise ConfigError(
                f"--epsilons: {str(value)[:40]!r} is not a number; give positive numbers, or "
                "inf for a run without DP"
            ) from None
        if math.isinf(epsilon) and str(value).strip().lower().lstrip("+") not in (
                "inf", "infinity"):
            # float("1e400") is inf too: a number too large to hold is not a request for no DP.
            raise ConfigError(
                f"--epsilons: ε={str(value)[:40]} is too large to be a number; write inf for a "
                "run without DP"
            )
        if math.isnan(epsilon) or epsilon < 0:
            raise ConfigError(
                f"--epsilons: ε={value} is not allowed; ε must be a positive number, or inf for "
                "a run without DP"
            )
        if epsilon == 0:
            raise ConfigError(
                "--epsilons: ε=0 cannot be reached by DP-SGD (it needs infinite noise); give a "
                "small positive ε such as 0.5"
            )
        if epsilon in epsilons:
            raise ConfigError(f"--epsilons: ε={epsilon:g} is given twice; give each ε once")
        epsilons.append(epsilon)
    return epsilons


def run_config(
    base: AuditMLConfig, epsilon: float, sweep: SweepDirectory, *, name: str | None = None,
    output_dir: Path | None = None, overrides: dict[str, Any] | None = None,
) -> AuditMLConfig:
    """``base`` trained at ``epsilon`` (∞: without DP) as run ``name`` under ``output_dir``.

    The noise is calibrated to ε (a ``noise_multiplier`` in ``base`` is dropped); δ, clipping
    and the accountant stay as configured. ``overrides`` maps dotted keys
    (``training.learning_rate``) to further settings (the tuner's candidates and seeds).
    """
    raw = base.resolved().model_dump(mode="json")
    raw["experiment_name"] = name or SweepDirectory.run_name(base.experiment_name, epsilon)
    raw["output_dir"] = str(output_dir or sweep.runs_dir)
    for key, value in (overrides or {}).items():
        *sections, leaf = key.split(".")
        target = raw
        for section in sections:
            target = target[section]
        target[leaf] = value
    dp = raw["training"]["dp"]
    dp["enabled"] = not math.isinf(epsilon)
    dp["epsilon"] = None if math.isinf(epsilon) else epsilon
    dp["noise_multiplier"] = None
    return parse_config(raw, f"the sweep's run at ε={epsilon:g}")


def sweep_attacks(config: AuditMLConfig, requested: Sequence[str] | None) -> list[str]:
    """The membership attacks to run on every run of the sweep.

    ``--attack`` wins; else the config's ``audit.attacks`` when the config sets it; else the
    strongest attack its budget allows: LiRA when the config sets ``audit.reference_models``
    (reference models are trained per run, a cost the user opted into), else the loss
    threshold, which needs no extra training; for a language model, Min-K%++. Canary audits are
    refused: the sweep tabulates membership attacks. Unknown names and bad settings are refused
    here, before any training.
    """
    task = config.dataset_spec.task
    if requested:
        names = expand_names(requested, task=task)
    elif "attacks" in config.audit.model_fields_set:
        names = expand_names(config.audit.attacks, task=task)
    elif task == "causal_lm":
        names = [TEXT_ATTACK]
    elif "reference_models" in config.audit.model_fields_set:
        names = [REFERENCE_ATTACK]
    else:
        names = [CHEAP_ATTACK]
    for name in names:
        if name not in ATTACKS:
            raise ConfigError(
                f"--attack {name}: the sweep tabulates membership attacks ("
                f"{', '.join(ATTACKS.available())}); run canary audits with `auditml audit`"
            )
    # Bad settings, and settings the dataset's inputs cannot take, fail now, not per run.
    input_shape = config.dataset_spec.input_shape
    for attack in plan_audit(names, config.audit.attack_sections(), task=task).attacks:
        attack.check_task(task)
        attack.check_inputs(input_shape)
    return names
