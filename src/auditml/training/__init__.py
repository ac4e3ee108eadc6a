"""Training with and without DP-SGD; writes the run directory."""

from auditml.training.trainer import TrainResult, build_run_model, load_dataset, train

__all__ = ["TrainResult", "build_run_model", "load_dataset", "train"]
