"""``grad_sample_mode: auto``: time every mode on this device; leave the default only for a clear
winner.

Which way of clipping per-example gradients is fastest depends on the device, not only on the
model: on two CPU cores auditml's ``fast`` rules win for the tutorial CNN, while on an H200 at
batch 2048 their many small kernels lose to Opacus's ``ghost`` clipping (issue 11's table). So
``auto`` times DP-SGD steps of every mode that can train the model, interleaved round by round,
on synthetic data of the run's input shape and batch size, and leaves the default only for a mode
faster in every round (:func:`decide`); a conclusive choice measured on a machine that was not
busy is cached per :class:`~auditml.training.grad_sample_cache.ModeKey` (entries expire, and a
run that contradicts one drops it), so each machine measures each set-up about once.
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
import os
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from auditml.config import DPConfig
from auditml.training.dp_sgd import TrainingStep, make_private
from auditml.training.grad_sample_cache import (
    CONCRETE_MODES,
    CachedChoice,
    ModeCache,
    ModeKey,
    mode_key,
)
from auditml.training.per_example import fast_path_problems
from auditml.training.privacy import NoisePlan

# modes -> each mode's seconds per DP-SGD step, one figure per timed round (rounds interleave
# the modes; a mode dropped as hopeless has fewer). The default times real steps
# (measure_step_seconds).
MeasureModes = Callable[[Sequence[str]], dict[str, list[float]]]
# Whether the machine is too busy for a measurement to be kept: a description, or None.
BusyCheck = Callable[[], str | None]

# Timed rounds: at least MIN_ROUNDS (a mode replaces the default only by winning every one of
# them), then more, up to TIMED_ROUNDS, while the rounds are projected to stay within
# MEASURE_BUDGET_S. On two CPU cores the tutorial CNN at batch 256 takes about 4 s, once per
# set-up. A smaller probe batch would be cheaper but would not do: on a CPU the ranking changes
# with the batch (resnet_groupnorm: fast wins at 64, hooks at 256).
MIN_ROUNDS = 3
TIMED_ROUNDS = 5
MEASURE_BUDGET_S = 0.4
# On a CPU, a mode other than the default whose first step took this many times the quickest
# one's is not timed again: it cannot win, and hooks' step is the costliest part of measuring
# the tutorial CNN at batch 256. The default is never dropped: a burst of load on its first
# step must not hand the choice to another mode.
DROP_SLOWER_THAN = 2.5
# Another mode replaces the default (the first candidate: fast where it covers the model) only
# when it is at least this much faster in every timed round.
REQUIRED_GAIN = 0.10
# A run whose steps took this many times the cached figure contradicts the cache (the choice
# was measured on a busy machine, or the machine changed): the entry is dropped and measured
# again by the next run. Only steps of at least CONFIRM_MIN_STEP_S are compared: below that a
# run's step is mostly data loading and bookkeeping the measurement leaves out.
STALE_FACTOR = 2.0
CONFIRM_MIN_STEP_S = 0.05
# Other processes' load (the 1-minute load average less this process's threads) above this
# fraction of the CPUs makes a CPU measurement too busy to cache.
BUSY_LOAD_FRACTION = 0.5


@dataclass(frozen=True)
class ModeChoice:
    """The concrete mode to train with, and why (shown to the user).

    ``key`` and ``step_seconds`` are set for a choice read from the cache, so that a run can
    check its own steps against the figure (:func:`confirm_choice`).
    """

    mode: str
    reason: str
    key: ModeKey | None = None
    step_seconds: float | None = None
    cache: ModeCache | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Decision:
    """What a measurement decided: the mode, and whether the rounds agreed clearly enough for
    the choice to be kept (``conclusive``); ``why`` says which way it went."""

    mode: str
    conclusive: bool
    why: str


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
    busy: BusyCheck | None = None,
    now: float | None = None,
) -> ModeChoice:
    """The mode ``requested`` stands for when training ``model`` (registered as ``arch``).

    ``auto`` looks the key up in ``cache`` (default: the user's cache file; entries expire) and
    otherwise measures with ``measure`` (default: :func:`measure_step_seconds` on ``device``:
    every mode, interleaved round by round) and decides with :func:`decide`: the default (the
    first candidate) stays unless another mode wins every round clearly. The choice is cached
    only when the rounds were conclusive and, on a CPU, the machine was not busy (``busy``,
    default :func:`cpu_busy`, asked before and after measuring): a busy moment decides at most
    the run at hand. A mode whose probe fails is left out; if all fail, the first candidate is
    used so that training reports the real error.
    """
    if requested != "auto":
        return ModeChoice(requested, "set by training.dp.grad_sample_mode")
    candidates = candidate_modes(model)
    cache = cache if cache is not None else ModeCache()
    key = mode_key(model, arch=arch, input_shape=input_shape, batch_size=batch_size,
                   device=device)
    cached = cache.get(key, now=now)
    if cached is not None and cached.mode in candidates:
        age = cached.age_days(now)
        return ModeChoice(
            cached.mode,
            f"auto: {_timings(cached.step_seconds)} on {key.device}, measured "
            f"{_age(age)} and cached in {cache.path}",
            key=key, step_seconds=cached.step_seconds.get(cached.mode), cache=cache,
        )
    if measure is None:
        def measure(modes: Sequence[str]) -> dict[str, list[float]]:
            return measure_step_seconds(model, modes, input_shape=input_shape,
                                        batch_size=batch_size, device=device)
    if busy is None:
        busy = cpu_busy if device.type == "cpu" else (lambda: None)
    default = candidates[0]
    load_before = busy()
    rounds = {mode: list(values) for mode, values in measure(candidates).items()
              if mode in candidates and values}
    load = load_before or busy()
    if not rounds:
        return ModeChoice(default, f"auto: no mode could be timed; {default}")
    decision = decide(rounds, default=next(m for m in candidates if m in rounds))
    medians = {mode: statistics.median(values) for mode, values in rounds.items()}
    if not decision.conclusive:
        where = f"not cached: {decision.why}"
    elif load is not None:
        where = f"not cached: the machine was busy ({load}), so the next run measures again"
    else:
        stored = cache.put(key, CachedChoice(
            decision.mode, medians, rounds=max(len(values) for values in rounds.values()),
            measured_at=time.time() if now is None else now,
        ))
        where = f"cached in {cache.path}" if stored else f"not cached: {cache.problem}"
    return ModeChoice(decision.mode, f"auto: {_timings(medians)} on {key.device}, {where}")


def decide(rounds: Mapping[str, Sequence[float]], *, default: str,
           min_rounds: int = MIN_ROUNDS, gain: float = REQUIRED_GAIN) -> Decision:
    """The mode to train with, from each mode's per-round step seconds.

    Rounds are paired by position (round ``i`` timed every mode still in play, in turn). A mode
    replaces ``default`` only if it was at least ``gain`` faster in every one of at least
    ``min_rounds`` paired rounds; among several such, the one with the smallest median ratio.
    Otherwise ``default`` stays, and the decision is conclusive only if every other mode was
    clearly slower: by ``gain`` in the median of the paired rounds, or dropped as hopeless after
    its first step. Modes within ``gain`` of each other, or too few rounds, are a measurement a
    burst of load may have decided, not to be kept. (Keeping the default needs less evidence
    than leaving it: a wrongly kept default costs speed until the entry expires, and leaving it
    on a burst's word is what issue 29 was about.)
    """
    timed = rounds.get(default, ())
    winners: dict[str, float] = {}
    unclear: list[str] = []
    for mode, values in rounds.items():
        if mode == default:
            continue
        paired = list(zip(timed, values, strict=False))
        if len(paired) >= min_rounds and all(other <= (1 - gain) * base
                                             for base, other in paired):
            winners[mode] = statistics.median(other / base for base, other in paired)
        elif len(values) < len(timed) and paired and paired[0][1] > paired[0][0]:
            continue  # dropped as hopeless after a first step slower than the default's
        elif len(paired) < min_rounds or statistics.median(
                other / base for base, other in paired) < 1 / (1 - gain):
            unclear.append(mode)  # not clearly slower: a burst may have decided it
    if winners:
        best = min(winners, key=winners.__getitem__)
        return Decision(best, True, f"{best} beat {default} in every round")
    if unclear:
        return Decision(default, False, f"the rounds did not settle {default} against "
                        f"{', '.join(unclear)}, so {default} (the default) is used and the "
                        "next run measures again")
    return Decision(default, True, f"{default} won every round")


def confirm_choice(choice: ModeChoice, step_seconds: float) -> str | None:
    """Check a cached choice against the run's own median DP-SGD step.

    A step :data:`STALE_FACTOR` times slower than the cached figure contradicts the cache: its
    entry is dropped, so the next run measures again; the note to print is returned (None when
    the run agreed, or the choice was not read from the cache).
    """
    if choice.key is None or choice.cache is None or not choice.step_seconds:
        return None
    if step_seconds < CONFIRM_MIN_STEP_S or step_seconds <= STALE_FACTOR * choice.step_seconds:
        return None
    choice.cache.forget(choice.key)
    return (f"note: this run's DP-SGD steps took {step_seconds * 1e3:.0f} ms, the cached "
            f"measurement of {choice.mode} {choice.step_seconds * 1e3:.0f} ms; the cached choice "
            "was dropped and the next run measures the modes again")


def cpu_busy() -> str | None:
    """Whether other processes keep this machine's CPUs busy: the 1-minute load average less
    this process's threads, when above :data:`BUSY_LOAD_FRACTION` of the CPUs (None where the
    load average is not available, e.g. on Windows)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    cpus = os.cpu_count() or 1
    others = load - torch.get_num_threads()
    if others <= BUSY_LOAD_FRACTION * cpus:
        return None
    return f"load {load:.1f} on {cpus} CPUs"


def _age(days: float) -> str:
    if days < 1:
        return "today"
    return f"{days:.0f} day{'s' if days >= 1.5 else ''} ago"


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
) -> dict[str, list[float]]:
    """Seconds of each timed DP-SGD step of a copy of ``model`` in each mode that runs, round
    by round (:func:`time_step_rounds`; ``modes[0]``, the default, is never dropped).

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
            return time_step_rounds(
                {mode: functools.partial(step, x, y) for mode, (step, _) in steps.items()},
                device=device, warmup_rounds=0 if cpu else 1,
                drop_slower_than=DROP_SLOWER_THAN if cpu else None, keep=modes[:1],
                clock=clock,
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
    """The median of each step's timed rounds (:func:`time_step_rounds`, one round at least);
    steps dropped as hopeless are left out."""
    timed = time_step_rounds(steps, device=device, budget_s=budget_s, rounds=rounds,
                             min_rounds=1, warmup_rounds=warmup_rounds,
                             drop_slower_than=drop_slower_than, clock=clock)
    most = max((len(values) for values in timed.values()), default=0)
    return {name: statistics.median(values) for name, values in timed.items()
            if len(values) == most}


def time_step_rounds(
    steps: Mapping[str, Callable[[], object]],
    *,
    device: torch.device,
    budget_s: float = MEASURE_BUDGET_S,
    rounds: int = TIMED_ROUNDS,
    min_rounds: int = MIN_ROUNDS,
    warmup_rounds: int = 1,
    drop_slower_than: float | None = None,
    keep: Sequence[str] = (),
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds of each step, timed in turn round after round (``device`` synchronised).

    ``warmup_rounds`` untimed rounds run first (first-step allocations, lazy kernel loading,
    cuDNN's choice of algorithms), then ``min_rounds`` timed rounds always, and more (up to
    ``rounds``) only while the timed rounds are projected to stay within ``budget_s``. A step
    that raises is dropped (e.g. a layer run twice: the fast path sees it only when it runs),
    and so is one whose first run took over ``drop_slower_than`` times the quickest first run,
    unless it is named in ``keep``.
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
                record.pop(name, None)
                continue
            record.setdefault(name, []).append(seconds)
        return clock() - started

    def drop_slow(first_runs: dict[str, list[float]]) -> None:
        if drop_slower_than is None or not first_runs:
            return
        quickest = min(values[0] for values in first_runs.values())
        for name, values in first_runs.items():
            if values[0] > drop_slower_than * quickest and name not in keep:
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
    for done in range(1, rounds):
        if done >= min_rounds and (clock() - began) + last > budget_s:
            break
        last = one_round(times)
    # Dropped-as-hopeless steps keep their one timed figure: they have fewer rounds.
    return {name: times[name] for name in steps if name in times}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
