"""``grad_sample_mode: auto``: time every mode once on this device, then keep the fastest.

Which way of clipping per-example gradients is fastest depends on the device, not only on the
model: on two CPU cores auditml's ``fast`` rules win for the tutorial CNN, while on an H200 at
batch 2048 their many small kernels lose to Opacus's ``ghost`` clipping (issue 11's table). So
``auto`` times a few DP-SGD steps of every mode that can train the model, on synthetic data of
the run's input shape and batch size, and takes the fastest; the choice is cached per
:class:`~auditml.training.grad_sample_cache.ModeKey`, so each machine measures each set-up once.
An explicit mode (``fast``, ``hooks``, ``ghost``) measures nothing.

Privacy is the same whatever is chosen: every mode runs one mechanism (:mod:`.dp_sgd`), so the
choice changes floating-point rounding only, and the mode actually used is recorded in the run's
``metrics.json`` (``grad_sample_mode``); setting it explicitly reproduces the run. The
measurement cannot shift the run's random draws: it trains a copy of the model, draws its data
from its own generator under a forked global RNG, and adds no noise (the noise is the same work
in every mode, so leaving it out changes no ranking).
"""

from __future__ import annotations

import copy
import functools
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from auditml.config import DPConfig
from auditml.training.dp_sgd import TrainingStep, make_private
from auditml.training.grad_sample_cache import CONCRETE_MODES, CachedChoice, ModeCache, mode_key
from auditml.training.per_example import fast_path_problems
from auditml.training.privacy import NoisePlan

# modes -> seconds per DP-SGD step of each (the default times real steps: measure_step_seconds).
MeasureModes = Callable[[Sequence[str]], dict[str, float]]

# One timed step of every mode always runs (after a warm-up step, except on a CPU); more timed
# rounds, up to TIMED_ROUNDS (their median is kept), only while the timed rounds are projected
# to stay within MEASURE_BUDGET_S. A GPU step takes milliseconds and gets them all; on two CPU
# cores the tutorial CNN at batch 256 gets one step of each mode. A smaller probe batch would
# be cheaper but would not do: on a CPU the ranking changes with the batch (resnet_groupnorm:
# fast wins at 64, hooks at 256).
TIMED_ROUNDS = 5
MEASURE_BUDGET_S = 0.4
# On a CPU, a mode whose first step took this many times the quickest one's is not timed
# again (or re-timed to confirm a pick): it cannot win, and hooks' step is the costliest part
# of measuring the tutorial CNN at batch 256.
DROP_SLOWER_THAN = 2.5
# Another mode replaces the default (the first candidate: fast where it covers the model) only
# when it is at least this much faster: a ranking within the noise of a one-round measurement
# on a busy machine must not turn a fast default into a slower choice, cached for good.
REQUIRED_GAIN = 0.10


@dataclass(frozen=True)
class ModeChoice:
    """The concrete mode to train with, and why (shown to the user)."""

    mode: str
    reason: str


def candidate_modes(model: nn.Module) -> list[str]:
    """The modes that can train ``model``: ``fast`` when its rules cover every trainable layer,
    and Opacus's ``hooks`` and ``ghost`` always (they refuse what they cannot do themselves)."""
    return [mode for mode in CONCRETE_MODES if mode != "fast" or not fast_path_problems(model)]


def resolve_grad_sample_mode(
    requested: str,
    model: nn.Module,
    *,
    arch: str,
    input_shape: tuple[int, ...],
    batch_size: int,
    device: torch.device,
    cache: ModeCache | None = None,
    measure: MeasureModes | None = None,
) -> ModeChoice:
    """The mode ``requested`` stands for when training ``model`` (registered as ``arch``).

    ``auto`` looks the key up in ``cache`` (default: the user's cache file) and otherwise
    measures with ``measure`` (default: :func:`measure_step_seconds` on ``device``), picks with
    :func:`pick_fastest` (a pick other than the default is timed twice) and records the pick.
    A mode whose probe fails is left out; if all fail, the first candidate is used so that
    training reports the real error.
    """
    if requested != "auto":
        return ModeChoice(requested, "set by training.dp.grad_sample_mode")
    candidates = candidate_modes(model)
    cache = cache if cache is not None else ModeCache()
    key = mode_key(model, arch=arch, input_shape=input_shape, batch_size=batch_size,
                   device=device)
    cached = cache.get(key)
    if cached is not None and cached.mode in candidates:
        return ModeChoice(cached.mode, f"auto: {_timings(cached.step_seconds)} on {key.device}, "
                          f"measured before and cached in {cache.path}")
    if measure is None:
        def measure(modes: Sequence[str]) -> dict[str, float]:
            return measure_step_seconds(model, modes, input_shape=input_shape,
                                        batch_size=batch_size, device=device)
    default = candidates[0]
    seconds = measure(candidates)
    timed = {mode: seconds[mode] for mode in candidates if mode in seconds}
    if not timed:
        return ModeChoice(default, f"auto: no mode could be timed; {default}")
    chosen = pick_fastest(timed, default=default)
    if chosen != default:
        # Leaving the default is cached for good, so a burst of load from another process that
        # slowed the default's step (or had it dropped as hopeless) must not decide it: time
        # the two again and keep each one's faster figure (load only ever slows a step down).
        again = measure([default, chosen])
        for mode in (default, chosen):
            figures = [f[mode] for f in (timed, again) if mode in f]
            if figures:
                timed[mode] = min(figures)
        chosen = pick_fastest({m: timed[m] for m in (default, chosen) if m in timed},
                              default=default)
    stored = cache.put(key, CachedChoice(chosen, timed))
    where = f"cached in {cache.path}" if stored else f"not cached: {cache.problem}"
    return ModeChoice(chosen, f"auto: {_timings(timed)} on {key.device}, {where}")


def pick_fastest(step_seconds: Mapping[str, float], *, default: str) -> str:
    """The fastest mode, unless ``default`` is within :data:`REQUIRED_GAIN` of it."""
    fastest = min(step_seconds, key=step_seconds.__getitem__)
    if default in step_seconds and (
        step_seconds[fastest] > (1 - REQUIRED_GAIN) * step_seconds[default]
    ):
        return default
    return fastest


def _timings(seconds: Mapping[str, float]) -> str:
    if not seconds:
        return "chosen by an earlier measurement"
    listed = ", ".join(f"{mode} {value * 1e3:.1f} ms" for mode, value in seconds.items())
    return f"DP step {listed}"


def measure_step_seconds(
    model: nn.Module,
    modes: Sequence[str],
    *,
    input_shape: tuple[int, ...],
    batch_size: int,
    device: torch.device,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds of one DP-SGD step of a copy of ``model`` in each mode that runs.

    Steps are interleaved mode by mode, round after round, so that a change in machine load hits
    every mode alike. A mode that fails (a layer its rules or hooks refuse) is left out.
    """
    fork = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus's secure-RNG and hook notices
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(batch_size, *input_shape, generator=generator)
        with torch.no_grad():
            classes = int(copy.deepcopy(model).to(device)(x[:1].to(device)).shape[-1])
        y = torch.randint(0, classes, (batch_size,), generator=generator)
        steps: dict[str, tuple[TrainingStep, Callable[[], None]]] = {}
        for mode in modes:
            try:
                steps[mode] = _probe_step(model, mode, x, y, device)
            except Exception:  # a mode that cannot train this model is simply no choice
                continue
        x, y = x.to(device), y.to(device)
        try:
            # On a CPU a first step costs what the next ones do (no kernels to load or tune:
            # tutorial CNN, batch 256, first vs next three steps, ms: fast 368 vs 394-439,
            # hooks 1481 vs 1194-1388, ghost 488 vs 457-569), so it is timed rather than
            # thrown away, and tells a mode that cannot win; elsewhere it is a warm-up only.
            cpu = device.type == "cpu"
            return time_steps(
                {mode: functools.partial(step, x, y) for mode, (step, _) in steps.items()},
                device=device, warmup_rounds=0 if cpu else 1,
                drop_slower_than=DROP_SLOWER_THAN if cpu else None, clock=clock,
            )
        finally:
            for _, close in steps.values():
                close()


def _probe_step(model: nn.Module, mode: str, x: torch.Tensor, y: torch.Tensor,
                device: torch.device) -> tuple[TrainingStep, Callable[[], None]]:
    probe = copy.deepcopy(model).to(device)
    optimizer = torch.optim.SGD(probe.parameters(), lr=0.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=len(x))
    # σ = 0: no noise draws (see the module docstring); one full batch per "epoch".
    plan = NoisePlan(noise_multiplier=0.0, sample_rate=1.0, steps=1, calibrated=False)
    dp = DPConfig(enabled=True, noise_multiplier=1.0, max_grad_norm=1.0, accountant="rdp")
    private = make_private(probe, optimizer, loader, plan=plan, dp=dp, mode=mode)
    return private.step, private.close


def time_steps(
    steps: Mapping[str, Callable[[], object]],
    *,
    device: torch.device,
    budget_s: float = MEASURE_BUDGET_S,
    rounds: int = TIMED_ROUNDS,
    warmup_rounds: int = 1,
    drop_slower_than: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds of each step, timed in turn round after round (``device`` synchronised).

    ``warmup_rounds`` untimed rounds run first (first-step allocations, lazy kernel loading,
    cuDNN's choice of algorithms), then one timed round always, and more (up to ``rounds``)
    only while the timed rounds are projected to stay within ``budget_s``. A step that raises
    is dropped (e.g. a layer run twice: the fast path sees it only when it runs), and so is one
    whose first run took over ``drop_slower_than`` times the quickest first run.
    """
    working = dict(steps)

    def one_round(record: dict[str, list[float]]) -> float:
        started = clock()
        for name, step in list(working.items()):
            try:
                _synchronize(device)
                before = clock()
                step()
                _synchronize(device)
                seconds = clock() - before
            except Exception:
                del working[name]
                continue
            record.setdefault(name, []).append(seconds)
        return clock() - started

    def drop_slow(first_runs: dict[str, list[float]]) -> None:
        if drop_slower_than is None or not first_runs:
            return
        quickest = min(values[0] for values in first_runs.values())
        for name, values in first_runs.items():
            if values[0] > drop_slower_than * quickest:
                working.pop(name, None)

    warm: dict[str, list[float]] = {}
    for _ in range(warmup_rounds):
        one_round(warm)
    drop_slow(warm)
    times: dict[str, list[float]] = {}
    began = clock()
    last = one_round(times)
    if not warmup_rounds:
        drop_slow(times)
    for _ in range(rounds - 1):
        if (clock() - began) + last > budget_s:
            break
        last = one_round(times)
    return {name: statistics.median(times[name]) for name in working if name in times}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
