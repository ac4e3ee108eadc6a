"""Training with and without DP-SGD; writes the run directory."""

from auditml.training.trainer import (
    FitResult,
    TrainResult,
    build_run_model,
    fit_model,
    load_dataset,
    train,
)

__all__ = ["FitResult", "TrainResult", "build_run_model", "fit_model", "load_dataset", "train"]
