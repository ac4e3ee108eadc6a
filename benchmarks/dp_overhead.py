"""DP-SGD's cost over plain training, as a ratio measured in one process.

Times one epoch of the tutorial's 28x28 CNN at batch 256 on random data, without DP and with
Opacus's per-sample-gradient hooks, alternating the two so that machine noise hits both alike.
Prints the absolute times and the ratio (the number issue #5 wants at most 1.5).

    python benchmarks/dp_overhead.py [--examples 5120] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from auditml.models import build_model


def epoch_seconds(private: bool, examples: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = build_model("cnn_28x28", (1, 28, 28), 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = TensorDataset(torch.randn(examples, 1, 28, 28), torch.randint(0, 10, (examples,)))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    trainable: nn.Module = model
    if private:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainable, optimizer, loader = PrivacyEngine().make_private(
                module=model, optimizer=optimizer, data_loader=loader,
                noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=True,
            )
    criterion = nn.CrossEntropyLoss()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x, y in loader:
            optimizer.zero_grad()
            criterion(trainable(x), y).backward()
            optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5120)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    plain, private = [], []
    for _ in range(args.repeats):
        plain.append(epoch_seconds(False, args.examples, args.batch_size))
        private.append(epoch_seconds(True, args.examples, args.batch_size))
    plain_s, private_s = statistics.median(plain), statistics.median(private)
    print(f"threads={torch.get_num_threads()} examples={args.examples} batch={args.batch_size}")
    print(f"non-private epoch: {plain_s:.3f}s (median of {args.repeats})")
    print(f"DP-SGD epoch (Opacus hooks): {private_s:.3f}s")
    print(f"ratio DP / non-private: {private_s / plain_s:.2f}")


if __name__ == "__main__":
    main()
