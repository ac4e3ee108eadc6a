"""``auditml sweep``: the privacy–utility–leakage curve of one config over several ε."""

from __future__ import annotations

from auditml.sweep.plan import DEFAULT_EPSILONS, default_config, parse_epsilons
from auditml.sweep.runner import SweepResult, run_sweep

__all__ = ["DEFAULT_EPSILONS", "SweepResult", "default_config", "parse_epsilons", "run_sweep"]
