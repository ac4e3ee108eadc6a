"""Per-example convolution gradients: im2col against shifted products, as ratios.

Times both ways ``auditml.training.per_example.conv`` can form a stride-1 convolution's
per-example weight gradients (and their norms), over input-channel counts and image sizes, at
batch 256. The rule takes im2col up to ``FEW_CHANNELS`` input channels and shifted products above;
the ratio column (shifted / im2col, below 1 = shifted wins) is the evidence for that threshold.

    python benchmarks/per_example_conv.py [--batch 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from auditml.training.per_example.conv import (
    FEW_CHANNELS,
    _shifted_products,
    _unfolded_products,
)


def seconds(work: Callable[[], object], repeats: int) -> float:
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"batch={args.batch} threads={torch.get_num_threads()} FEW_CHANNELS={FEW_CHANNELS}")
    print(f"{'size':>5} {'in':>4} {'out':>4} {'im2col':>9} {'shifted':>9} {'ratio':>6}")
    for size in (8, 14, 28):
        for in_channels, out_channels in ((1, 32), (3, 32), (8, 32), (16, 32), (32, 64)):
            conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
            x = torch.randn(args.batch, in_channels, size, size)
            g = torch.randn(args.batch, out_channels, size, size)
            unfolded = seconds(
                lambda c=conv, x=x, g=g: _unfolded_products(c, x, g).pow(2).sum((1, 2)),
                args.repeats,
            )
            shifted = seconds(
                lambda c=conv, x=x, g=g: _shifted_products(c, x, g).squared_norms, args.repeats
            )
            print(
                f"{size:>5} {in_channels:>4} {out_channels:>4} {unfolded * 1e3:>7.1f}ms "
                f"{shifted * 1e3:>7.1f}ms {shifted / unfolded:>6.2f}"
            )


if __name__ == "__main__":
    main()
