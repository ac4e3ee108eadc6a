"""The DP-SGD bugs that ship, each reproduced as its source describes it, against correct loops.

Every loop is a plain Opacus loop on scikit-learn's digits (1,797 examples, batch 128, 15
epochs, claimed ε = 2 at δ = 1e-5, PRV accountant, hooks unless named), audited by
``auditml.CanaryAudit(optimizer, model=..., data_loader=..., privacy_engine=...)`` with 1,000
Dirac canaries. For each loop and seed it records which of the accountant's assumptions the
audit found broken (``result.failed_checks``), the verdict (``result.violation``), the ε lower
bound the check reports for what the loop really did (shuffled batches), and the time of the
loop with the audit against the same loop without it (the audit's overhead, in the same
process, rounds alternating).

    python benchmarks/bug_zoo.py [--seeds 10] [--loops NAME ...] [--epochs 15]

The loops (:data:`LOOPS`): correct ones that must pass, and bugs with the check that must catch
each. Tests (``tests/audit/test_bug_zoo.py``) run every loop once, at fewer epochs.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from opacus import PrivacyEngine
from opacus.utils.batch_memory_manager import BatchMemoryManager
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

import auditml
from auditml.audit.own_loop import AssumptionWarning, CanaryAuditResult


@dataclass(frozen=True)
class Settings:
    epochs: int = 15
    batch_size: int = 128
    epsilon: float = 2.0
    delta: float = 1e-5
    accountant: str = "prv"
    canaries: int = 1000


@dataclass
class Loop:
    """One training loop: what it does, where the bug comes from, and what must catch it."""

    name: str
    source: str
    expected: tuple[str, ...]  # the checks that must fail; () for a correct loop
    run: Callable[[int, Settings, bool], LoopRun]


@dataclass
class LoopRun:
    result: CanaryAuditResult | None  # None when run without the audit
    seconds: float
    warnings: list[str] = field(default_factory=list)


def digits() -> TensorDataset:
    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    return TensorDataset(x, torch.tensor(data.target, dtype=torch.int64))


def mlp(*, batch_norm: str | None = None) -> nn.Module:
    """64 → 32 → 10 (2,410 weights); ``batch_norm``: "affine_false" or "frozen" adds a
    BatchNorm1d after the hidden layer that Opacus's validator lets through (it has no
    trainable parameters)."""
    layers: list[nn.Module] = [nn.Linear(64, 32)]
    if batch_norm == "affine_false":
        layers.append(nn.BatchNorm1d(32, affine=False))
    elif batch_norm == "frozen":
        norm = nn.BatchNorm1d(32)
        norm.requires_grad_(False)
        layers.append(norm)
    layers += [nn.ReLU(), nn.Linear(32, 10)]
    return nn.Sequential(*layers)


def _private(
    settings: Settings, seed: int, *, loader: DataLoader | None = None,
    model: nn.Module | None = None, poisson: bool = True, mode: str = "hooks",
) -> tuple[PrivacyEngine, nn.Module, Any, DataLoader, Any, DataLoader]:
    """make_private_with_epsilon as the Opacus tutorials do; returns the engine, the private
    model, optimiser, loader and criterion, and the loader passed in."""
    torch.manual_seed(seed)
    data = digits()
    loader = loader or DataLoader(data, batch_size=settings.batch_size, shuffle=not poisson,
                                  generator=torch.Generator().manual_seed(seed))
    model = model or mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    engine = PrivacyEngine(accountant=settings.accountant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = engine.make_private_with_epsilon(
            module=model, optimizer=optimizer, data_loader=loader,
            criterion=nn.CrossEntropyLoss(), target_epsilon=settings.epsilon,
            target_delta=settings.delta, epochs=settings.epochs, max_grad_norm=1.0,
            poisson_sampling=poisson, grad_sample_mode=mode,
        )
    if mode == "ghost":
        private_model, private_optimizer, criterion, private_loader = made
    else:
        private_model, private_optimizer, private_loader = made
        criterion = nn.CrossEntropyLoss()
    return engine, private_model, private_optimizer, private_loader, criterion, loader


def _train(
    settings: Settings, seed: int, audited: bool, *, poisson: bool = True, mode: str = "hooks",
    loader: DataLoader | None = None, model: nn.Module | None = None,
    iterate: Callable[[DataLoader, DataLoader, Any], Iterator[tuple[Any, Any]]] | None = None,
    before_step: Callable[[Any, Any, Any], None] | None = None,
    after_make: Callable[[PrivacyEngine, nn.Module, Any, DataLoader], None] | None = None,
    step_every: int = 1, epoch_end: Callable[[PrivacyEngine, Any], None] | None = None,
) -> LoopRun:
    """The ordinary loop, with the hooks each bug needs: ``iterate`` chooses the batches (the
    private loader by default), ``before_step`` runs before each ``optimizer.step()``,
    ``after_make`` once after make_private, ``step_every`` accumulates that many batches per
    step, ``epoch_end`` runs after each epoch."""
    engine, model, optimizer, private_loader, criterion, original = _private(
        settings, seed, loader=loader, model=model, poisson=poisson, mode=mode)
    if after_make is not None:
        after_make(engine, model, optimizer, private_loader)
    audit = None
    caught: list[str] = []
    if audited:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", AssumptionWarning)
            audit = auditml.CanaryAudit(
                optimizer, count=settings.canaries, seed=seed, model=model,
                data_loader=private_loader, privacy_engine=engine,
            )
        caught = [str(w.message) for w in seen if issubclass(w.category, AssumptionWarning)]
    start = time.perf_counter()
    for _ in range(settings.epochs):
        batches = (iterate(private_loader, original, optimizer) if iterate is not None
                   else iter(private_loader))
        for index, (xb, yb) in enumerate(batches, start=1):
            if len(yb) == 0:
                continue
            criterion(model(xb), yb).backward()
            if index % step_every == 0:
                if before_step is not None:
                    before_step(optimizer, xb, yb)
                optimizer.step()
                optimizer.zero_grad()
        if epoch_end is not None:
            epoch_end(engine, optimizer)
    seconds = time.perf_counter() - start
    result = audit.result(engine, delta=settings.delta) if audit is not None else None
    return LoopRun(result, seconds, caught)


# -- correct loops ---------------------------------------------------------------------------------


def poisson_hooks(seed: int, settings: Settings, audited: bool) -> LoopRun:
    return _train(settings, seed, audited)


def poisson_ghost(seed: int, settings: Settings, audited: bool) -> LoopRun:
    return _train(settings, seed, audited, mode="ghost")


def poisson_functorch(seed: int, settings: Settings, audited: bool) -> LoopRun:
    return _train(settings, seed, audited, mode="functorch")


def batch_memory_manager(seed: int, settings: Settings, audited: bool) -> LoopRun:
    def physical(private: DataLoader, _: DataLoader, optimizer: Any) -> Iterator[Any]:
        with BatchMemoryManager(data_loader=private, max_physical_batch_size=32,
                                optimizer=optimizer) as memory_safe:
            yield from memory_safe

    return _train(settings, seed, audited, iterate=physical)


# -- bugs ------------------------------------------------------------------------------------------


def shuffled_batches(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """make_private_with_epsilon(..., poisson_sampling=False): the loader's fixed-size shuffled
    batches, accounted as Poisson (Chua et al. 2024; Annamalai et al. 2024; Opacus #80)."""
    return _train(settings, seed, audited, poisson=False)


def shuffled_drop_last(seed: int, settings: Settings, audited: bool) -> LoopRun:
    loader = DataLoader(digits(), batch_size=settings.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    return _train(settings, seed, audited, poisson=False, loader=loader)


def original_loader(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """make_private with Poisson sampling, but the loop iterates the loader it had before
    (the one with the sampler the user wanted: Opacus #600)."""
    loader = DataLoader(digits(), batch_size=settings.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    return _train(settings, seed, audited, loader=loader,
                  iterate=lambda _, original, __: iter(original))


def _weighted(settings: Settings, seed: int) -> DataLoader:
    data = digits()
    weights = torch.where(data.tensors[1] == 0, 5.0, 1.0)  # class 0 drawn five times as often
    sampler = WeightedRandomSampler(weights, num_samples=len(data), replacement=True,
                                    generator=torch.Generator().manual_seed(seed))
    return DataLoader(data, batch_size=settings.batch_size, sampler=sampler)


def weighted_loader_iterated(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """A WeightedRandomSampler loader made private, and the loop iterates it, not the loader
    Opacus returned (which drops the weights: Opacus #600, #813)."""
    loader = _weighted(settings, seed)
    return _train(settings, seed, audited, loader=loader,
                  iterate=lambda _, original, __: iter(original))


def weighted_sampler_as_issued(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """Opacus #813 as its issue describes it: a WeightedRandomSampler with few samples per
    epoch; the loop uses the loader make_private returned. Opacus replaces the sampler by
    Poisson sampling at rate 1/len(loader) over the whole dataset and accounts that very rate:
    ε burns fast because the batches are large, but the accounting matches what ran."""
    data = digits()
    sampler = WeightedRandomSampler(torch.ones(len(data)), num_samples=256, replacement=True,
                                    generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(data, batch_size=16, sampler=sampler)
    return _train(settings, seed, audited, loader=loader)


def accountant_whole_dataset_rate(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """The accountant is told batch / len(whole dataset) while the loader samples a subset of
    half of it (the rate computed by hand from the wrong N)."""
    data = digits()
    train = torch.utils.data.Subset(data, range(0, len(data), 2))
    loader = DataLoader(train, batch_size=settings.batch_size // 2)

    def wrong_rate(engine: PrivacyEngine, _: nn.Module, optimizer: Any, __: DataLoader) -> None:
        optimizer.attach_step_hook(engine.accountant.get_optimizer_hook_fn(
            sample_rate=(settings.batch_size // 2) / len(data)))

    return _train(settings, seed, audited, loader=loader, after_make=wrong_rate)


def accountant_stepped_per_epoch(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """A hand-rolled loop that steps the accountant once per epoch instead of once per noisy
    step (the optimiser's own hook removed)."""
    rate: list[float] = []

    def detach_hook(_: PrivacyEngine, __: nn.Module, optimizer: Any, loader: DataLoader) -> None:
        rate.append(1 / len(loader))
        optimizer.step_hook = None

    def per_epoch(engine: PrivacyEngine, optimizer: Any) -> None:
        engine.accountant.step(noise_multiplier=optimizer.noise_multiplier, sample_rate=rate[0])

    return _train(settings, seed, audited, after_make=detach_hook, epoch_end=per_epoch)


def accumulation_allowed(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """Two Poisson batches per step after silencing Opacus's refusal
    (``model.allow_grad_accumulation()``, hooks): Opacus accounts the step at twice the rate
    (its hook multiplies the rate by the accumulated iterations) and divides by twice the
    expected batch size, so the accounting follows what ran."""
    def allow(_: PrivacyEngine, model: nn.Module, __: Any, ___: DataLoader) -> None:
        model.allow_grad_accumulation()  # type: ignore[operator]

    return _train(settings, seed, audited, step_every=2, after_make=allow)


def accumulation_ghost(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """Gradient accumulation with ghost clipping: two Poisson batches' backward passes per step.
    Opacus's ghost optimiser sums them into one noisy step, but its ``accumulated_iterations``
    is always 1, so the accountant steps once at the one-batch rate: each step really samples at
    twice the accounted rate."""
    return _train(settings, seed, audited, mode="ghost", step_every=2)


def normalise_by_real_batch(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """The noisy sum divided by the batch's real size, not the expected one (Opacus #420's
    suggestion; #819 and Wang et al. 2026 show it leaks): ``expected_batch_size`` set per step."""
    def real_size(optimizer: Any, xb: Any, yb: Any) -> None:
        optimizer.expected_batch_size = max(1, len(yb))

    return _train(settings, seed, audited, before_step=real_size)


def non_private_head(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """The classifier head also stepped by a plain optimiser on each private batch's gradient
    (a second optimiser, say for a head trained "as usual"): its updates carry no noise and
    the accountant never hears of them."""
    head: list[torch.optim.Optimizer] = []

    def second_optimiser(engine: Any, model: Any, optimizer: Any, loader: Any) -> None:
        head.append(torch.optim.SGD(list(model.parameters())[-2:], lr=0.5))

    def plain_step(optimizer: Any, xb: Any, yb: Any) -> None:
        head[0].step()

    return _train(settings, seed, audited, after_make=second_optimiser, before_step=plain_step)


def batchnorm_affine_false(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """A BatchNorm1d(affine=False): no trainable parameters, so Opacus's validator passes it;
    in training mode it mixes the batch's examples and keeps running statistics of the data."""
    return _train(settings, seed, audited, model=mlp(batch_norm="affine_false"))


def frozen_batchnorm(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """A frozen BatchNorm1d (a pretrained backbone's, requires_grad False), left in training
    mode: the validator skips it (not trainable), training mixes examples through it."""
    return _train(settings, seed, audited, model=mlp(batch_norm="frozen"))


def _resume(seed: int, settings: Settings, audited: bool, *, restore_accountant: bool) -> LoopRun:
    """Train half the epochs, checkpoint, rebuild everything as a restarted process would
    (a new PrivacyEngine, model, optimiser and audit), load the checkpoint, train the rest.
    With ``restore_accountant`` the engine's checkpoint carries the accountant
    (``PrivacyEngine.save_checkpoint``); without it only the model and optimiser are saved, and
    the new accountant starts from zero: the claimed ε covers half the training."""
    half = settings.epochs // 2
    engine, model, optimizer, loader, criterion, _ = _private(settings, seed)
    audit = (auditml.CanaryAudit(optimizer, count=settings.canaries, seed=seed, model=model,
                                 data_loader=loader, privacy_engine=engine) if audited else None)
    seconds = 0.0

    def epochs(count: int, model: nn.Module, optimizer: Any, loader: DataLoader) -> float:
        start = time.perf_counter()
        for _ in range(count):
            for xb, yb in loader:
                if len(yb):
                    criterion(model(xb), yb).backward()
                    optimizer.step()
                    optimizer.zero_grad()
        return time.perf_counter() - start

    seconds += epochs(half, model, optimizer, loader)
    saved = io.BytesIO()
    if restore_accountant:
        engine.save_checkpoint(path=saved, module=model, optimizer=optimizer)
    else:
        torch.save({"module": model.state_dict(), "optimizer": optimizer.state_dict()}, saved)
    audit_state = audit.state_dict() if audit is not None else None
    sigma = optimizer.noise_multiplier
    # The restart: nothing of the first process but the checkpoint.
    torch.manual_seed(seed + 10_000)
    model = mlp()
    fresh = PrivacyEngine(accountant=settings.accountant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, optimizer, loader = fresh.make_private(
            module=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
            data_loader=DataLoader(digits(), batch_size=settings.batch_size),
            noise_multiplier=sigma, max_grad_norm=1.0,
        )
    saved.seek(0)
    if restore_accountant:
        fresh.load_checkpoint(path=saved, module=model, optimizer=optimizer)
    else:
        state = torch.load(saved, weights_only=True)
        model.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
    if audit_state is not None:
        audit = auditml.CanaryAudit(optimizer, count=settings.canaries, seed=seed, model=model,
                                    data_loader=loader, privacy_engine=fresh)
        audit.load_state_dict(audit_state)
    seconds += epochs(settings.epochs - half, model, optimizer, loader)
    result = audit.result(fresh, delta=settings.delta) if audit is not None else None
    return LoopRun(result, seconds)


def resume_with_accountant(seed: int, settings: Settings, audited: bool) -> LoopRun:
    return _resume(seed, settings, audited, restore_accountant=True)


def resume_fresh_accountant(seed: int, settings: Settings, audited: bool) -> LoopRun:
    """A resume that saved the model and optimiser but not the accountant: the new engine
    accounts only the steps after the restart."""
    return _resume(seed, settings, audited, restore_accountant=False)


LOOPS: dict[str, Loop] = {loop.name: loop for loop in [
    Loop("poisson_hooks", "Opacus make_private_with_epsilon, Poisson sampling, hooks", (),
         poisson_hooks),
    Loop("poisson_ghost", "the same, grad_sample_mode='ghost'", (), poisson_ghost),
    Loop("poisson_functorch", "the same, grad_sample_mode='functorch'", (), poisson_functorch),
    Loop("batch_memory_manager", "Poisson batches in physical batches of 32 "
         "(BatchMemoryManager: gradient accumulation done right)", (), batch_memory_manager),
    Loop("resume_with_accountant", "checkpoint and resume with PrivacyEngine.save_checkpoint "
         "/ load_checkpoint (the accountant restored)", (), resume_with_accountant),
    Loop("accumulation_allowed", "two Poisson batches per step (allow_grad_accumulation, "
         "hooks): Opacus accounts twice the rate", (), accumulation_allowed),
    Loop("weighted_sampler_as_issued", "Opacus #813 as its issue describes it (Opacus "
         "replaces the sampler and accounts what it runs)", (), weighted_sampler_as_issued),
    Loop("shuffled_batches", "poisson_sampling=False, accounted as Poisson (Chua et al. 2024; "
         "Annamalai et al. 2024; Opacus #80)", ("loader", "batch_sizes"), shuffled_batches),
    Loop("shuffled_drop_last", "DataLoader(shuffle=True, drop_last=True), "
         "poisson_sampling=False", ("loader", "batch_sizes"), shuffled_drop_last),
    Loop("original_loader", "make_private's loader unused; the loop iterates its own "
         "(Opacus #600)", ("batch_sizes",), original_loader),
    Loop("weighted_loader_iterated", "a WeightedRandomSampler loader iterated instead of "
         "Opacus's (#600, #813)", ("batch_sizes",), weighted_loader_iterated),
    Loop("accountant_whole_dataset_rate", "accountant told batch/len(whole dataset), loader "
         "samples half of it", ("rate",), accountant_whole_dataset_rate),
    Loop("accountant_stepped_per_epoch", "accountant stepped once per epoch, not per step",
         ("steps",), accountant_stepped_per_epoch),
    Loop("resume_fresh_accountant", "resume that restored the model and optimiser but not the "
         "accountant", ("steps",), resume_fresh_accountant),
    Loop("accumulation_ghost", "two Poisson batches per noisy step with ghost clipping, "
         "accounted as one batch", ("rate",), accumulation_ghost),
    Loop("normalise_by_real_batch", "noisy sum divided by the real batch size (Opacus "
         "#420, #819; Wang et al. 2026)", ("normalisation",), normalise_by_real_batch),
    Loop("non_private_head", "the head also stepped by a plain optimiser on the private "
         "batch", ("updates",), non_private_head),
    Loop("batchnorm_affine_false", "BatchNorm1d(affine=False) in training mode",
         ("hidden_state",), batchnorm_affine_false),
    Loop("frozen_batchnorm", "frozen BatchNorm1d in training mode", ("hidden_state",),
         frozen_batchnorm),
]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--loops", nargs="*", choices=sorted(LOOPS), default=list(LOOPS))
    parser.add_argument("--epochs", type=int, default=Settings.epochs)
    parser.add_argument("--accountant", default=Settings.accountant)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = Settings(epochs=args.epochs, accountant=args.accountant)
    print(f"{settings}; {args.seeds} seeds; times on one thread")
    header = ("| loop | must fail | caught | VIOLATION | other failed checks (runs) | "
              "ε if shuffled (median) | audited loop s | overhead |")
    print(header)
    print("|" + " --- |" * 8)
    for name in args.loops:
        loop = LOOPS[name]
        caught = violations = 0
        others: Counter[str] = Counter()
        shuffled: list[float] = []
        seconds: list[float] = []
        overheads: list[float] = []
        for seed in range(args.seeds):
            # Alternate which of the pair runs first, so a slow moment hits both alike.
            order = (True, False) if seed % 2 == 0 else (False, True)
            runs = {audited: loop.run(seed, settings, audited) for audited in order}
            audited_run, plain = runs[True], runs[False]
            assert audited_run.result is not None
            result = audited_run.result
            failed = set(result.failed_checks)
            caught += bool(loop.expected) and set(loop.expected) <= failed
            violations += result.violation
            others.update(failed - set(loop.expected))
            shuffled += [check.epsilon_lower_bound for check in result.checks
                         if check.epsilon_lower_bound is not None][:1]
            seconds.append(audited_run.seconds)
            overheads.append(audited_run.seconds / plain.seconds - 1)
        must = ", ".join(loop.expected) or "— (correct)"
        found = f"{caught}/{args.seeds}" if loop.expected else "—"
        other = ", ".join(f"{check} ({count})" for check, count in sorted(others.items())) or "—"
        bound = f"{statistics.median(shuffled):.2f}" if shuffled else "—"
        print(f"| {name} | {must} | {found} | {violations}/{args.seeds} | {other} | {bound} | "
              f"{statistics.median(seconds):.2f} | {statistics.median(overheads):+.1%} |",
              flush=True)


if __name__ == "__main__":
    main()
