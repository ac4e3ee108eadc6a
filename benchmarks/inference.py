"""Evaluation forward passes: the default layout against channels-last, as ratios.

``auditml.models.predict_logits`` (validation each epoch, every attack's scores) switches
convolutional weights to channels-last while it runs. This times a forward pass of each registered
model over the same inputs in both layouts, alternating, and prints the times and their ratio.

    python benchmarks/inference.py [--examples 2048] [--batch 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from auditml.models import MODELS, build_model

SHAPES = {"cnn_28x28": (1, 28, 28), "cnn_8x8": (1, 8, 8), "mlp": (1, 28, 28),
          "resnet_groupnorm": (3, 32, 32)}


@torch.no_grad()
def seconds(model: torch.nn.Module, x: torch.Tensor, batch: int) -> float:
    start = time.perf_counter()
    for first in range(0, len(x), batch):
        model(x[first : first + batch])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"examples={args.examples} batch={args.batch} threads={torch.get_num_threads()}")
    for arch in MODELS.available():
        model = build_model(arch, SHAPES[arch], 10).eval()
        x = torch.randn(args.examples, *SHAPES[arch])
        default, channels_last = [], []
        for _ in range(args.rounds):
            for layout, times in [(torch.contiguous_format, default),
                                  (torch.channels_last, channels_last)]:
                times.append(seconds(model.to(memory_format=layout), x, args.batch))
        plain, fast = statistics.median(default), statistics.median(channels_last)
        print(f"  {arch:<17} default {plain:6.3f}s  channels-last {fast:6.3f}s  "
              f"ratio {fast / plain:4.2f}")


if __name__ == "__main__":
    main()
