"""Training with and without DP-SGD; writes the run directory.

The names below are imported on first use: ``audit`` needs only :func:`build_run_model` and
:func:`load_dataset`, and must not pay for importing the trainer's DP-SGD machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditml.lazy import lazy_attributes

if TYPE_CHECKING:
    from auditml.training.run_model import build_run_model, load_dataset
    from auditml.training.trainer import FitResult, TrainResult, fit_model, train

_HOME = {
    "FitResult": "auditml.training.trainer",
    "TrainResult": "auditml.training.trainer",
    "fit_model": "auditml.training.trainer",
    "train": "auditml.training.trainer",
    "build_run_model": "auditml.training.run_model",
    "load_dataset": "auditml.training.run_model",
}

__all__ = ["FitResult", "TrainResult", "build_run_model", "fit_model", "load_dataset", "train"]


__getattr__ = lazy_attributes(__name__, _HOME)
