"""The reference for ``tutorial_end_to_end.py``: the tutorial's three models, plain Opacus.

What a user would write without auditml: the same data (the first 5000 training examples), the
same CNN, optimiser, batch size and epochs as ``configs/dp_tutorial_*.yaml``, and Opacus with its
defaults (``make_private_with_epsilon``: per-sample-gradient hooks, Poisson sampling, the PRV
accountant). It evaluates test accuracy once per model, at the end, and audits nothing. auditml's
data loading and model factory are used only so that data and architecture are identical.

    python benchmarks/plain_opacus_tutorial.py [--dataset fashion_mnist] [--epochs 20]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from auditml.data import DATASETS
from auditml.models import build_model

# (name, DP target epsilon or None, delta, max_grad_norm), as in configs/dp_tutorial_*.yaml.
RUNS = [("baseline", None, None, None), ("eps5", 5.0, 2e-4, 1.0), ("eps1", 1.0, 2e-4, 0.5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    loaded = DATASETS.get(args.dataset).load(Path("data"), False)
    if loaded.test is None:
        raise SystemExit(f"{args.dataset} has no test split; use mnist or fashion_mnist")
    train = TensorDataset(torch.from_numpy(loaded.pool.x[:5000]),
                          torch.from_numpy(loaded.pool.y[:5000]))
    test_x, test_y = torch.from_numpy(loaded.test.x), torch.from_numpy(loaded.test.y)
    for name, epsilon, delta, max_grad_norm in RUNS:
        start = time.perf_counter()
        torch.manual_seed(0)
        model = build_model("cnn_28x28", (1, 28, 28), 10)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
        loader = DataLoader(train, batch_size=256, shuffle=True)
        trained: nn.Module = model
        if epsilon is not None:
            trained, optimizer, loader = PrivacyEngine().make_private_with_epsilon(
                module=model, optimizer=optimizer, data_loader=loader, epochs=args.epochs,
                target_epsilon=epsilon, target_delta=delta, max_grad_norm=max_grad_norm,
            )
        criterion = nn.CrossEntropyLoss()
        for _ in range(args.epochs):
            for x, y in loader:
                optimizer.zero_grad()
                criterion(trained(x), y).backward()
                optimizer.step()
        with torch.no_grad():
            accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
        print(f"{name}: test accuracy {accuracy:.3f}, {time.perf_counter() - start:.1f}s")


if __name__ == "__main__":
    main()
